package state

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// ErrTargetNotEmpty is wrapped by CopyTo's error when the target store
// already holds records.
var ErrTargetNotEmpty = errors.New("the target store is not empty")

// CopyReport is what CopyTo copied: the rows of each table, counted in the
// source and in the target after the copy (they are equal, or CopyTo
// failed).
type CopyReport struct {
	From     string      `json:"from"`
	To       string      `json:"to"`
	Identity Identity    `json:"identity"`
	Tables   []TableRows `json:"tables"`
	Rows     int64       `json:"rows"`
	Elapsed  time.Duration
}

// copyOrder is the order CopyTo copies the tables of a store in:
// revisions before the tables whose rows refer to them, the identity last;
// not the schema's own record (schema_migrations) nor the apply lock.
func copyOrder(tables []string) []string {
	out := []string{"revisions"}
	for _, t := range tables {
		switch t {
		case "revisions", "schema_migrations", "lock", "store_identity":
		default:
			out = append(out, t)
		}
	}
	return append(out, "store_identity")
}

// CopyTo copies every record of this store (a SQLite one) into the
// PostgreSQL store at dsn, for tend store migrate: revisions (with their
// IDs), holds, source snapshots, contracts, the backup catalog and drills,
// scaling targets and decisions, usage samples, approvals (every table the
// store has) and the store's identity,
// all in one transaction; then it counts the rows of each table on both
// sides and fails if any differ. The apply lock is not copied, and a store
// whose lock is held (an apply is running) is refused. The target must be
// empty: no table but schema_migrations and store_identity may hold a row
// (ErrTargetNotEmpty). The target's identity becomes the source's, so that
// the copy is the same store.
func (s *Store) CopyTo(ctx context.Context, dsn string) (*CopyReport, error) {
	start := time.Now()
	if s.pg != nil {
		return nil, errors.New("state: copy: the source must be a SQLite store")
	}
	if !IsPostgresURL(dsn) {
		return nil, errors.New("state: copy: the target must be a PostgreSQL URL (postgres://...)")
	}
	if h, err := s.LockHolder(); err != nil {
		return nil, err
	} else if h != nil && s.now().Before(h.ExpiresAt) {
		return nil, fmt.Errorf("state: copy: %s holds the apply lock (until %s): stop it first, so that nothing is recorded here after the copy",
			h, h.ExpiresAt.UTC().Format(time.RFC3339))
	}
	to, err := OpenPostgres(dsn)
	if err != nil {
		return nil, err
	}
	defer to.Close()
	r := &CopyReport{From: s.Path(), To: to.Path(), Identity: s.Identity()}
	fail := func(err error) (*CopyReport, error) {
		return nil, fmt.Errorf("state: copy %s to %s: %w", s.Path(), to.Path(), to.annotate(err))
	}

	srcTables, err := s.tableNames(ctx)
	if err != nil {
		return fail(err)
	}
	dstTables, err := to.tableNames(ctx)
	if err != nil {
		return fail(err)
	}
	order := copyOrder(srcTables)
	for _, t := range order {
		if !slices.Contains(dstTables, t) {
			return fail(fmt.Errorf("the target has no table %s: is this tend older than the one that wrote the store?", t))
		}
	}
	before, err := to.countRows(ctx, order)
	if err != nil {
		return fail(err)
	}
	var full []string
	for _, t := range before {
		if t.Table != "store_identity" && t.Rows > 0 {
			full = append(full, fmt.Sprintf("%s %d", t.Table, t.Rows))
		}
	}
	if len(full) > 0 {
		return fail(fmt.Errorf("%w (%s): tend store migrate copies into an empty database only, and will not mix two stores", ErrTargetNotEmpty, strings.Join(full, ", ")))
	}

	err = to.write(func(tx *txn) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM store_identity`); err != nil {
			return err
		}
		for _, table := range order {
			if err := copyTable(ctx, s, tx, table); err != nil {
				return fmt.Errorf("%s: %w", table, err)
			}
		}
		// The next IDs follow the copied ones.
		identities, err := pragmaList(ctx, to.db, `SELECT table_name FROM information_schema.columns
			WHERE table_schema = current_schema() AND column_name = 'id' AND is_identity = 'YES' ORDER BY table_name`)
		if err != nil {
			return err
		}
		for _, table := range identities {
			if _, err := tx.ExecContext(ctx, `SELECT setval(pg_get_serial_sequence('`+table+`', 'id'),
				(SELECT coalesce(max(id), 0) + 1 FROM `+table+`), false)`); err != nil {
				return fmt.Errorf("%s: %w", table, err)
			}
		}
		return nil
	})
	if err != nil {
		return fail(err)
	}

	want, err := s.countRows(ctx, order)
	if err != nil {
		return fail(err)
	}
	got, err := to.countRows(ctx, order)
	if err != nil {
		return fail(err)
	}
	var diff []string
	for i := range want {
		if want[i].Rows != got[i].Rows {
			diff = append(diff, fmt.Sprintf("%s: %d in the source, %d copied", want[i].Table, want[i].Rows, got[i].Rows))
		}
		r.Rows += got[i].Rows
	}
	if len(diff) > 0 {
		return fail(fmt.Errorf("the counts differ after the copy: %s", strings.Join(diff, "; ")))
	}
	if id, err := loadIdentity(ctx, to.db); err != nil || id == nil || *id != r.Identity {
		return fail(fmt.Errorf("the copy's identity is %v (%v), not the source's %s", id, err, r.Identity))
	}
	r.Tables = got
	r.Elapsed = time.Since(start)
	return r, nil
}

// copyTable copies every row of table from src into tx, column by column
// (the two schemas have the same columns: TestPostgresSchemaMatchesSQLite).
func copyTable(ctx context.Context, src *Store, tx *txn, table string) error {
	rows, err := src.queryContext(ctx, `SELECT * FROM `+table)
	if err != nil {
		return err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return err
	}
	marks := strings.TrimSuffix(strings.Repeat("?, ", len(cols)), ", ")
	st, err := tx.PrepareContext(ctx, `INSERT INTO `+table+` (`+strings.Join(cols, ", ")+`) VALUES (`+marks+`)`)
	if err != nil {
		return err
	}
	defer st.Close()
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return err
		}
		if _, err := st.ExecContext(ctx, vals...); err != nil {
			return err
		}
	}
	return rows.Err()
}

// tableNames lists the store's tables.
func (s *Store) tableNames(ctx context.Context) ([]string, error) {
	q := `SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name`
	if s.pg != nil {
		q = `SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY table_name`
	}
	return pragmaList(ctx, s.db, q)
}

// countRows counts the rows of each table.
func (s *Store) countRows(ctx context.Context, tables []string) ([]TableRows, error) {
	out := make([]TableRows, 0, len(tables))
	for _, t := range tables {
		tr := TableRows{Table: t}
		if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM `+t).Scan(&tr.Rows); err != nil {
			return nil, fmt.Errorf("count %s: %w", t, err)
		}
		out = append(out, tr)
	}
	return out, nil
}
