package backup

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"filippo.io/age"
)

// scryptWorkFactor is the cost of turning a passphrase into a key: age's
// default, about a second. The tests lower it (the race detector makes a
// second a minute).
var scryptWorkFactor = 18

// encrypter wraps w in age encryption to key: an age identity
// (AGE-SECRET-KEY-1...) encrypts to its recipient, anything else is a
// passphrase (scrypt). Without a key it passes w through.
func encrypter(w io.Writer, key string) (io.WriteCloser, error) {
	if key == "" {
		return nopCloser{w}, nil
	}
	var r age.Recipient
	if strings.HasPrefix(key, "AGE-SECRET-KEY-1") {
		id, err := age.ParseX25519Identity(strings.TrimSpace(key))
		if err != nil {
			return nil, errors.New("the encryption_key starts as an age identity but is not a valid one")
		}
		r = id.Recipient()
	} else {
		sr, err := age.NewScryptRecipient(key)
		if err != nil {
			return nil, errors.New("the encryption_key cannot be used as a passphrase")
		}
		sr.SetWorkFactor(scryptWorkFactor)
		r = sr
	}
	return age.Encrypt(w, r)
}

// decrypter reads r encrypted by encrypter with the same key.
func decrypter(r io.Reader, key string) (io.Reader, error) {
	if key == "" {
		return r, nil
	}
	var id age.Identity
	if strings.HasPrefix(key, "AGE-SECRET-KEY-1") {
		x, err := age.ParseX25519Identity(strings.TrimSpace(key))
		if err != nil {
			return nil, errors.New("the encryption_key starts as an age identity but is not a valid one")
		}
		id = x
	} else {
		s, err := age.NewScryptIdentity(key)
		if err != nil {
			return nil, errors.New("the encryption_key cannot be used as a passphrase")
		}
		id = s
	}
	out, err := age.Decrypt(r, id)
	if err != nil {
		// age's errors name no key material.
		return nil, fmt.Errorf("the archive cannot be decrypted with the backup block's encryption_key: %w", err)
	}
	return out, nil
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }
