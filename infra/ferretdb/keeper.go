package main

// The index keeper: GIN expression indexes that FerretDB v1's PostgreSQL queries can use.
//
// FerretDB v1.24.2 pushes a top-level equality filter ({field: v} or {field: {$eq: v}} on a
// string, ObjectId, date, bool or number) down as `_jsonb->$1 @> $2`, with the field name as
// the parameter $1. The btree indexes it makes for createIndex are on `(_jsonb->'field')` and
// cannot serve `@>`, so every find, findOne, and the lookup step of updateOne/deleteOne, is a
// sequential scan. A GIN index on the same expression with the jsonb_path_ops operator class
// can serve it, provided the planner sees the field name as a constant: the cluster runs with
// plan_cache_mode=force_custom_plan (infra/servers/postgres.sh) because FerretDB sends these
// queries as cached prepared statements, and a generic plan (made with $1 unknown) never
// matches an expression index.
//
// FerretDB does not know about these indexes: they are not in its metadata or in
// listIndexes, dropping the collection drops them with the table, and FerretDB's collStats
// ignores them by name. So the keeper looks every -index-interval at FerretDB's metadata
// (the table _ferretdb_database_metadata in each schema, one row per collection, naming the
// table and the indexes declared by createIndex) and makes sure each collection table has
//
//	CREATE INDEX IF NOT EXISTS <name> ON <schema>.<table> USING gin ((_jsonb->'<field>') jsonb_path_ops)
//
// for _id and for every top-level field named in any of its indexes (dotted paths are
// skipped: FerretDB does not push them down). It remembers what it ensured per table OID, so
// a pass costs two queries (the FerretDB schemas, then one UNION ALL over their metadata
// tables) plus work for what is new, whatever the number of documents, and a
// dropped-then-recreated collection (new OID) is seen as new. A tick makes a pass only when
// PostgreSQL's WAL insert position moved since the last pass began (any change to a catalog
// or metadata table writes WAL), a failed creation is due for a retry, or a minute went by;
// otherwise it costs one trivial query.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

const (
	// metadataTable is where FerretDB keeps one row per collection, in each database's schema.
	metadataTable = "_ferretdb_database_metadata"

	// Tables above this size get CREATE INDEX CONCURRENTLY, which does not block writes
	// while it builds; smaller ones (new collections, the usual case) the plain, quicker form.
	concurrentAboveBytes = 8 << 20

	// schemasPerQuery bounds the size of one UNION ALL over metadata tables.
	schemasPerQuery = 100

	maxRetryDelay = time.Minute
	// Repeated identical failures (e.g. PostgreSQL down) are logged at most this often.
	errorLogEvery = time.Minute

	// A full pass at least this often, even when the WAL position says nothing changed.
	fullPassEvery = time.Minute
)

// collKey names one collection table; the OID changes when a collection is dropped and
// created again under the same name.
type collKey struct {
	schema string
	oid    uint32
}

type fieldState struct {
	done     bool      // the index exists and is valid
	failures int       // consecutive failed attempts
	retryAt  time.Time // no attempt before this
}

type collection struct {
	schema, table string
	oid           uint32 // 0: the table does not exist (yet, or any more)
	fields        []string
}

type indexKeeper struct {
	pool     *pgxpool.Pool
	interval time.Duration
	log      *slog.Logger

	state map[collKey]map[string]*fieldState

	lastLSN   string    // WAL insert position read at the start of the last complete pass
	lastPass  time.Time // when that pass began
	nextRetry time.Time // earliest retryAt of a failed creation (zero: none pending)

	lastErr    string
	lastErrLog time.Time
	failing    bool
}

func newIndexKeeper(url string, interval time.Duration, log *slog.Logger) (*indexKeeper, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("bad PostgreSQL URL: %w", err)
	}
	// One connection: the keeper does one thing at a time, beside FerretDB's own pool.
	cfg.MaxConns = 1
	cfg.MinConns = 0
	// Simple protocol: the metadata query's text changes with the set of schemas, so caching
	// prepared statements would only pile them up on the server.
	cfg.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
	rp := cfg.ConnConfig.RuntimeParams
	rp["application_name"] = "cxr-index-keeper"
	// Waiting for a table lock makes FerretDB's writers queue behind us: give up quickly
	// and try again on the next tick instead.
	rp["lock_timeout"] = "1s"
	// quoteLiteral relies on it (it is the default).
	rp["standard_conforming_strings"] = "on"

	p, err := pgxpool.NewWithConfig(context.Background(), cfg) // connects lazily
	if err != nil {
		return nil, err
	}
	return &indexKeeper{
		pool:     p,
		interval: interval,
		log:      log,
		state:    map[collKey]map[string]*fieldState{},
	}, nil
}

func (k *indexKeeper) close() { k.pool.Close() }

// run ticks until ctx is done. Nothing in here may stop FerretDB: errors, and even panics,
// are logged and the next tick tries again.
func (k *indexKeeper) run(ctx context.Context) {
	k.log.Info("index keeper started", "interval", k.interval.String())
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		err := k.safeTick(ctx)
		if ctx.Err() != nil {
			return
		}
		k.report(err)
		timer.Reset(k.interval)
	}
}

func (k *indexKeeper) safeTick(ctx context.Context) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v\n%s", r, debug.Stack())
		}
	}()
	return k.tick(ctx)
}

// report logs a failed tick, at most once a minute for the same error, and the recovery.
func (k *indexKeeper) report(err error) {
	if err == nil {
		if k.failing {
			k.log.Info("index keeper working again")
			k.failing = false
			k.lastErr = ""
		}
		return
	}
	k.failing = true
	msg := err.Error()
	if msg != k.lastErr || time.Since(k.lastErrLog) >= errorLogEvery {
		k.log.Warn("index keeper tick failed; retrying", "error", msg)
		k.lastErr, k.lastErrLog = msg, time.Now()
	}
}

func (k *indexKeeper) tick(ctx context.Context) error {
	qctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	now := time.Now()
	// Read before the metadata: whatever commits after this moves the position again.
	var lsn string
	if err := k.pool.QueryRow(qctx, `SELECT pg_catalog.pg_current_wal_insert_lsn()::text`).Scan(&lsn); err != nil {
		lsn = "" // e.g. a standby: always make the pass
	}
	if lsn != "" && lsn == k.lastLSN && now.Sub(k.lastPass) < fullPassEvery &&
		(k.nextRetry.IsZero() || now.Before(k.nextRetry)) {
		return nil
	}
	if err := k.pass(ctx, qctx); err != nil {
		return err
	}
	k.lastLSN, k.lastPass = lsn, now
	return nil
}

// pass reads the metadata of every FerretDB database and creates what is missing.
func (k *indexKeeper) pass(ctx, qctx context.Context) error {
	schemas, err := k.schemas(qctx)
	if err != nil {
		return fmt.Errorf("listing FerretDB databases: %w", err)
	}
	colls, err := k.collections(qctx, schemas)
	if err != nil {
		return fmt.Errorf("reading FerretDB metadata: %w", err)
	}

	now := time.Now()
	k.nextRetry = time.Time{}
	seen := make(map[collKey]bool, len(colls))
	for _, c := range colls {
		if c.oid == 0 {
			continue // metadata row without its table: being created or dropped
		}
		key := collKey{c.schema, c.oid}
		seen[key] = true
		fields := k.state[key]
		if fields == nil {
			fields = make(map[string]*fieldState, len(c.fields))
			k.state[key] = fields
		}
		for _, f := range c.fields {
			st := fields[f]
			if st == nil {
				st = &fieldState{}
				fields[f] = st
			}
			if st.done {
				continue
			}
			if now.Before(st.retryAt) {
				k.noteRetry(st.retryAt)
				continue
			}
			err := k.ensure(ctx, c, f)
			if ctx.Err() != nil {
				return nil
			}
			if err == nil {
				st.done = true
				continue
			}
			if isGone(err) {
				k.log.Debug("collection went away while indexing", "db", c.schema, "table", c.table, "error", err.Error())
				delete(k.state, key)
				break
			}
			st.failures++
			delay := min(time.Second<<min(st.failures, 6), maxRetryDelay)
			st.retryAt = time.Now().Add(delay)
			k.noteRetry(st.retryAt)
			level := slog.LevelWarn
			if isTransient(err) {
				level = slog.LevelDebug
			}
			k.log.Log(ctx, level, "could not create GIN index; will retry",
				"db", c.schema, "table", c.table, "field", f, "retry_in", delay.String(), "error", err.Error())
		}
	}
	// Forget dropped collections, so the state stays as small as the catalog.
	for key := range k.state {
		if !seen[key] {
			delete(k.state, key)
		}
	}
	return nil
}

func (k *indexKeeper) noteRetry(at time.Time) {
	if k.nextRetry.IsZero() || at.Before(k.nextRetry) {
		k.nextRetry = at
	}
}

// schemas returns the PostgreSQL schemas that are FerretDB databases.
func (k *indexKeeper) schemas(ctx context.Context) ([]string, error) {
	rows, err := k.pool.Query(ctx, `
		SELECT n.nspname
		FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relname = $1 AND c.relkind = 'r' AND n.nspname NOT LIKE 'pg\_%'
		ORDER BY 1`, metadataTable)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// collections reads every collection of the given schemas from FerretDB's metadata: one
// UNION ALL per schemasPerQuery schemas. A schema dropped since it was listed fails the
// whole statement; then each schema of that batch is read alone and missing ones skipped.
func (k *indexKeeper) collections(ctx context.Context, schemas []string) ([]collection, error) {
	var res []collection
	for start := 0; start < len(schemas); start += schemasPerQuery {
		batch := schemas[start:min(start+schemasPerQuery, len(schemas))]
		colls, err := k.readMetadata(ctx, batch)
		if err != nil && isGone(err) {
			colls = nil
			for _, s := range batch {
				c, err := k.readMetadata(ctx, []string{s})
				if err != nil && !isGone(err) {
					return nil, err
				}
				colls = append(colls, c...)
			}
			err = nil
		}
		if err != nil {
			return nil, err
		}
		res = append(res, colls...)
	}
	return res, nil
}

func (k *indexKeeper) readMetadata(ctx context.Context, schemas []string) ([]collection, error) {
	if len(schemas) == 0 {
		return nil, nil
	}
	parts := make([]string, len(schemas))
	args := make([]any, len(schemas))
	for i, s := range schemas {
		// to_regclass takes no lock and gives NULL for a missing table, so a table dropped
		// meanwhile does not fail the statement.
		parts[i] = fmt.Sprintf(`SELECT $%[1]d::text, m._jsonb->>'table',
			coalesce(pg_catalog.to_regclass(pg_catalog.format('%%I.%%I', $%[1]d::text, m._jsonb->>'table'))::oid, 0),
			m._jsonb->'indexes'
			FROM %[2]s m`, i+1, pgx.Identifier{s, metadataTable}.Sanitize())
		args[i] = s
	}
	rows, err := k.pool.Query(ctx, strings.Join(parts, "\nUNION ALL\n"), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var res []collection
	for rows.Next() {
		var c collection
		var table *string
		var indexes []byte
		if err := rows.Scan(&c.schema, &table, &c.oid, &indexes); err != nil {
			return nil, err
		}
		if table == nil || *table == "" {
			continue
		}
		c.table = *table
		c.fields = indexedFields(indexes)
		res = append(res, c)
	}
	return res, rows.Err()
}

// indexedFields returns "_id" and the top-level fields named in the keys of the indexes
// FerretDB declares (its metadata: [{"name":…, "pgindex":…, "key":{"field":1,…}, "unique":…}]).
func indexedFields(indexesJSON []byte) []string {
	fields := []string{"_id"}
	var indexes []struct {
		Key map[string]json.RawMessage `json:"key"`
	}
	if len(indexesJSON) == 0 || json.Unmarshal(indexesJSON, &indexes) != nil {
		return fields
	}
	seen := map[string]bool{"_id": true}
	for _, idx := range indexes {
		for f := range idx.Key {
			if f == "" || strings.Contains(f, ".") || strings.HasPrefix(f, "$") || seen[f] {
				continue
			}
			seen[f] = true
			fields = append(fields, f)
		}
	}
	return fields
}

// ensure makes sure the GIN index for field exists on c's table and is valid.
func (k *indexKeeper) ensure(ctx context.Context, c collection, field string) error {
	name := ginIndexName(c.table, field)
	qname := pgx.Identifier{c.schema, name}.Sanitize()

	var size *int64
	var valid *bool
	var onTable *bool
	err := k.pool.QueryRow(ctx, `
		SELECT pg_catalog.pg_relation_size($1::oid::regclass),
		       i.indisvalid, i.indrelid = $1::oid
		FROM (SELECT 1) AS one
		LEFT JOIN pg_catalog.pg_index i ON i.indexrelid = pg_catalog.to_regclass($2)`,
		c.oid, qname).Scan(&size, &valid, &onTable)
	if err != nil {
		return err
	}
	if size == nil {
		return errGone
	}
	if valid != nil {
		if *valid {
			if !*onTable {
				k.log.Warn("an index with the keeper's name is on another table; leaving it",
					"db", c.schema, "index", name, "table", c.table)
			}
			return nil // made earlier (by a previous run)
		}
		// A failed CREATE INDEX CONCURRENTLY leaves an invalid index behind, which IF NOT
		// EXISTS would keep forever: drop it and build again.
		k.log.Info("dropping invalid GIN index left by an interrupted build", "db", c.schema, "index", name)
		if _, err := k.pool.Exec(ctx, "DROP INDEX IF EXISTS "+qname); err != nil {
			return err
		}
	}

	concurrently := ""
	if *size > concurrentAboveBytes {
		concurrently = "CONCURRENTLY "
	}
	q := fmt.Sprintf(`CREATE INDEX %sIF NOT EXISTS %s ON %s USING gin ((_jsonb->%s) jsonb_path_ops) WITH (fastupdate = off)`,
		concurrently,
		pgx.Identifier{name}.Sanitize(),
		pgx.Identifier{c.schema, c.table}.Sanitize(),
		quoteLiteral(field),
	)
	start := time.Now()
	if _, err := k.pool.Exec(ctx, q); err != nil {
		return err
	}
	k.log.Info("created GIN index",
		"db", c.schema, "table", c.table, "field", field, "index", name,
		"table_bytes", *size, "concurrently", concurrently != "",
		"ms", time.Since(start).Milliseconds())
	return nil
}

// ginIndexName is the keeper's index name for (table, field): readable, deterministic, at
// most 63 bytes (PostgreSQL's limit), and distinct from FerretDB's own "…_<hash>_idx" names.
// The hash covers the exact table and field, so fields that sanitise alike still differ.
func ginIndexName(table, field string) string {
	sum := sha256.Sum256([]byte(table + "\x00" + field))
	h := hex.EncodeToString(sum[:5]) // 10 hex digits
	t := sanitize(table)
	if len(t) > 26 {
		t = t[:26]
	}
	f := sanitize(field)
	if len(f) > 20 {
		f = f[:20]
	}
	return t + "_" + f + "_" + h + "_gin" // ≤ 26+1+20+1+10+4 = 62
}

// sanitize lowercases s and replaces everything but [a-z0-9_] with '_' (so the result is
// ASCII and may be cut at any byte).
func sanitize(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') || r == '_' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}

// quoteLiteral quotes s as an SQL string constant (standard_conforming_strings=on).
func quoteLiteral(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

var errGone = errors.New("table no longer exists")

// isGone: the schema or table was dropped meanwhile (tests drop databases all the time).
func isGone(err error) bool {
	if errors.Is(err, errGone) {
		return true
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "42P01", // undefined_table
			"3F000", // invalid_schema_name
			"42704": // undefined_object
			return true
		}
	}
	return false
}

// isTransient: worth a quiet retry (lock wait timed out, deadlock with a concurrent drop, …).
func isTransient(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "55P03", // lock_not_available (lock_timeout)
			"40P01", // deadlock_detected
			"40001", // serialization_failure
			"57014": // query_canceled
			return true
		}
	}
	return false
}
