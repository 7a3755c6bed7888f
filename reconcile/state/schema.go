package state

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
)

// migration is one step of the schema. Migrations are applied in order, each
// in its own transaction together with its row in schema_migrations. Never
// edit a released migration: add a new one.
type migration struct {
	version int
	name    string
	sql     string
}

var migrations = []migration{
	{1, "initial schema", `
CREATE TABLE revisions (
	id              INTEGER PRIMARY KEY AUTOINCREMENT,
	server          TEXT NOT NULL,
	source_revision TEXT NOT NULL DEFAULT '',
	spec_hash       TEXT NOT NULL DEFAULT '',
	version         TEXT NOT NULL DEFAULT '',
	spec            BLOB,
	triggered_by    TEXT NOT NULL DEFAULT '',
	outcome         TEXT NOT NULL CHECK (outcome IN
	                ('pending', 'verified', 'failed', 'rolled-back', 'deleted', 'interrupted')),
	message         TEXT NOT NULL DEFAULT '',
	apply_id        TEXT NOT NULL DEFAULT '',
	started_at      TEXT NOT NULL,
	finished_at     TEXT
);
-- History(server), LatestAll.
CREATE INDEX revisions_server_id ON revisions (server, id);
-- LastVerified, LastVerifiedAll, MarkInterrupted.
CREATE INDEX revisions_outcome_server_id ON revisions (outcome, server, id);

CREATE TABLE holds (
	server          TEXT NOT NULL,
	spec_hash       TEXT NOT NULL,
	source_revision TEXT NOT NULL DEFAULT '',
	version         TEXT NOT NULL DEFAULT '',
	revision_id     INTEGER REFERENCES revisions (id) ON DELETE SET NULL,
	reason          TEXT NOT NULL DEFAULT '',
	held_at         TEXT NOT NULL,
	PRIMARY KEY (server, spec_hash)
) WITHOUT ROWID;
CREATE INDEX holds_revision_id ON holds (revision_id);

CREATE TABLE sources (
	rev        TEXT PRIMARY KEY,
	encoding   TEXT NOT NULL,
	sha256     TEXT NOT NULL,
	files      INTEGER NOT NULL,
	size       INTEGER NOT NULL,
	data       BLOB NOT NULL,
	created_at TEXT NOT NULL
);

CREATE TABLE lock (
	id          INTEGER PRIMARY KEY CHECK (id = 1),
	token       TEXT NOT NULL,
	owner       TEXT NOT NULL,
	operation   TEXT NOT NULL,
	host        TEXT NOT NULL,
	pid         INTEGER NOT NULL,
	acquired_at TEXT NOT NULL,
	expires_at  TEXT NOT NULL
);
`},
	{2, "contracts", `
-- The API contract (tools, resources, prompts and their schemas) a server
-- exposed when a revision was verified.
CREATE TABLE contracts (
	revision_id INTEGER PRIMARY KEY REFERENCES revisions (id) ON DELETE CASCADE,
	server      TEXT NOT NULL,
	version     TEXT NOT NULL DEFAULT '',
	contract    BLOB NOT NULL,
	recorded_at TEXT NOT NULL
);
CREATE INDEX contracts_server_revision ON contracts (server, revision_id);
`},
	{3, "backups", `
-- The backup catalog: every backup tend took or found at a destination,
-- good or failed. The manifest (JSON) is the one at the destination.
CREATE TABLE backups (
	id              TEXT PRIMARY KEY,
	server          TEXT NOT NULL,
	trigger         TEXT NOT NULL,
	revision_id     INTEGER,
	source_revision TEXT NOT NULL DEFAULT '',
	version         TEXT NOT NULL DEFAULT '',
	spec_hash       TEXT NOT NULL DEFAULT '',
	replica         INTEGER NOT NULL DEFAULT 0,
	destination     TEXT NOT NULL DEFAULT '',
	archive         TEXT NOT NULL DEFAULT '',
	size            INTEGER NOT NULL DEFAULT 0,
	sha256          TEXT NOT NULL DEFAULT '',
	encrypted       INTEGER NOT NULL DEFAULT 0,
	outcome         TEXT NOT NULL CHECK (outcome IN ('ok', 'failed', 'damaged')),
	error           TEXT NOT NULL DEFAULT '',
	manifest        BLOB,
	started_at      TEXT NOT NULL,
	finished_at     TEXT NOT NULL
);
CREATE INDEX backups_server_started ON backups (server, started_at);
CREATE INDEX backups_revision ON backups (revision_id);

-- Restore drills: a backup restored into a throw-away replica and checked.
CREATE TABLE drills (
	id          INTEGER PRIMARY KEY AUTOINCREMENT,
	server      TEXT NOT NULL,
	backup_id   TEXT NOT NULL,
	outcome     TEXT NOT NULL CHECK (outcome IN ('passed', 'failed')),
	message     TEXT NOT NULL DEFAULT '',
	started_at  TEXT NOT NULL,
	finished_at TEXT NOT NULL
);
CREATE INDEX drills_server_id ON drills (server, id);

-- Revisions whose migrate hook ran: rolling back across one needs the
-- data from before it.
ALTER TABLE revisions ADD COLUMN migrated INTEGER NOT NULL DEFAULT 0;
`},
	{4, "autoscaling", `
-- The replica count the autoscaler keeps for a server. It stands in for the
-- server's replicas while its scaling min and max and its provider are what
-- they were when it was decided.
CREATE TABLE scale_targets (
	server      TEXT PRIMARY KEY,
	provider    TEXT NOT NULL,
	replicas    INTEGER NOT NULL,
	min         INTEGER NOT NULL,
	max         INTEGER NOT NULL,
	decision_id INTEGER,
	updated_at  TEXT NOT NULL
);

-- Every autoscaling decision that changed a replica count, with its inputs
-- (the samples, the targets, the arithmetic) as JSON.
CREATE TABLE scale_decisions (
	id            INTEGER PRIMARY KEY AUTOINCREMENT,
	server        TEXT NOT NULL,
	from_replicas INTEGER NOT NULL,
	to_replicas   INTEGER NOT NULL,
	outcome       TEXT NOT NULL CHECK (outcome IN ('pending', 'applied', 'failed', 'held', 'interrupted')),
	reason        TEXT NOT NULL DEFAULT '',
	message       TEXT NOT NULL DEFAULT '',
	inputs        BLOB,
	revision_id   INTEGER,
	decided_at    TEXT NOT NULL,
	finished_at   TEXT
);
CREATE INDEX scale_decisions_server_id ON scale_decisions (server, id);
`},
	{5, "store identity", `
-- Who this store is: a random id and when the store was created, given once
-- (by Open, which also writes them to the marker file beside the database,
-- so that a store replaced or lost under tend is noticed).
CREATE TABLE store_identity (
	id         INTEGER PRIMARY KEY CHECK (id = 1),
	store_id   TEXT NOT NULL,
	created_at TEXT NOT NULL
);
`},
	{6, "resource usage", `
-- What each server used, summed over its replicas, as tend run samples it
-- every --usage-interval: tend capacity reads the average and the peak of
-- recent samples from here. Samples older than --usage-keep are deleted as
-- new ones are written. at is in Unix seconds.
CREATE TABLE usage_samples (
	server       TEXT NOT NULL,
	at           INTEGER NOT NULL,
	replicas     INTEGER NOT NULL,
	milli_cpu    INTEGER NOT NULL,
	memory_bytes INTEGER NOT NULL
);
CREATE INDEX usage_samples_at ON usage_samples (at);
CREATE INDEX usage_samples_server_at ON usage_samples (server, at);
`},
	{7, "approvals", `
-- Every approval and rejection of a planned change (tend approve, tend
-- reject, POST /api/v1/approve), bound to the hash of that server's planned
-- change: a different change needs a new decision. An approval is used once:
-- the apply of the change sets used_at and the revision it recorded.
CREATE TABLE approvals (
	id              INTEGER PRIMARY KEY AUTOINCREMENT,
	server          TEXT NOT NULL,
	change_hash     TEXT NOT NULL,
	decision        TEXT NOT NULL CHECK (decision IN ('approved', 'rejected')),
	decided_by      TEXT NOT NULL DEFAULT '',
	note            TEXT NOT NULL DEFAULT '',
	action          TEXT NOT NULL DEFAULT '',
	source_revision TEXT NOT NULL DEFAULT '',
	from_version    TEXT NOT NULL DEFAULT '',
	to_version      TEXT NOT NULL DEFAULT '',
	decided_at      TEXT NOT NULL,
	used_at         TEXT,
	revision_id     INTEGER
);
CREATE INDEX approvals_server_id ON approvals (server, id);
CREATE INDEX approvals_revision ON approvals (revision_id);
`},
}

// schemaVersion is the newest schema this code knows.
func schemaVersion() int { return migrations[len(migrations)-1].version }

const createMigrationsTable = `CREATE TABLE IF NOT EXISTS schema_migrations (
	version    INTEGER PRIMARY KEY,
	name       TEXT NOT NULL,
	applied_at TEXT NOT NULL
)`

// migrate brings the schema up to date. A store already up to date is only
// read; otherwise every missing migration runs in its own write transaction,
// which checks again what is applied, so that two tends opening a new store at
// once both succeed and apply each migration once.
func (s *Store) migrate() error {
	ctx := context.Background()
	var n int
	exists := `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'`
	if s.pg != nil {
		exists = `SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = 'schema_migrations'`
	}
	if err := s.db.QueryRowContext(ctx, exists).Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		applied, err := appliedVersions(ctx, s.db)
		if err != nil {
			return err
		}
		if err := checkKnown(applied); err != nil {
			return err
		}
		if len(applied) == len(migrations) {
			return nil
		}
	}
	for _, m := range migrations {
		err := s.write(func(tx *txn) error {
			if _, err := tx.ExecContext(ctx, createMigrationsTable); err != nil {
				return err
			}
			applied, err := appliedVersions(ctx, tx)
			if err != nil {
				return err
			}
			if err := checkKnown(applied); err != nil {
				return err
			}
			if slices.Contains(applied, m.version) {
				return nil
			}
			ddl := m.sql
			if s.pg != nil {
				ddl = pgDDL(ddl)
			}
			if _, err := tx.ExecContext(ctx, ddl); err != nil {
				return err
			}
			_, err = tx.ExecContext(ctx,
				`INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
				m.version, m.name, formatTime(s.now()))
			return err
		})
		if err != nil {
			return fmt.Errorf("schema migration %d (%s): %w", m.version, m.name, err)
		}
	}
	return nil
}

type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func appliedVersions(ctx context.Context, q querier) ([]int, error) {
	rows, err := q.QueryContext(ctx, `SELECT version FROM schema_migrations ORDER BY version`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var vs []int
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		vs = append(vs, v)
	}
	return vs, rows.Err()
}

// checkKnown refuses a store that records a migration this code does not have.
func checkKnown(applied []int) error {
	var unknown []string
	for _, v := range applied {
		if !slices.ContainsFunc(migrations, func(m migration) bool { return m.version == v }) {
			unknown = append(unknown, fmt.Sprint(v))
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	return fmt.Errorf("%w: it records schema version %s, but this tend knows versions up to %d; "+
		"it was written by a newer tend, so upgrade tend (this tend will not touch the store)",
		ErrSchemaTooNew, strings.Join(unknown, ", "), schemaVersion())
}
