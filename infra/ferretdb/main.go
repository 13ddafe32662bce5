// Command cxr-ferretdb runs FerretDB v1 (MongoDB wire protocol) with its PostgreSQL or
// SQLite backend, embedded through the public github.com/FerretDB/FerretDB/ferretdb
// package. A plain `go install .../cmd/ferretdb` panics at start because the module
// does not ship build/version/version.txt; embedding avoids that check.
//
// With the PostgreSQL backend it also runs the index keeper (keeper.go): FerretDB v1
// pushes equality filters down as `_jsonb->'field' @> value`, which its own btree
// indexes cannot serve, so every read is a sequential scan. The keeper adds GIN
// expression indexes that can.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/FerretDB/FerretDB/ferretdb"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:27017", "TCP address to listen on")
	handler := flag.String("handler", "sqlite", "backend: sqlite or postgresql")
	dataDir := flag.String("data", "", "directory for the SQLite databases, created if missing (sqlite handler)")
	pgURL := flag.String("postgresql-url", os.Getenv("CXR_FERRETDB_POSTGRESQL_URL"),
		"postgres://USER:PASSWORD@HOST:PORT/DATABASE (postgresql handler; default $CXR_FERRETDB_POSTGRESQL_URL, which keeps the password out of ps)")
	indexInterval := flag.Duration("index-interval", time.Second,
		"how often the index keeper checks for new collections and indexes (postgresql handler); 0 turns it off")
	logLevel := flag.String("log-level", "warn", "log level: debug, info, warn or error")
	flag.Parse()

	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		fail(2, "bad -log-level %q", *logLevel)
	}
	logger := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	cfg := ferretdb.Config{
		Listener: ferretdb.ListenerConfig{TCP: *listen},
		Logger:   logger,
		Handler:  *handler,
	}
	var where string
	switch *handler {
	case "sqlite":
		if *dataDir == "" {
			fail(2, "-data is required with -handler sqlite")
		}
		dir, err := filepath.Abs(*dataDir)
		if err != nil {
			fail(2, "bad -data %q: %v", *dataDir, err)
		}
		if err := os.MkdirAll(dir, 0o700); err != nil {
			fail(1, "cannot create %s: %v", dir, err)
		}
		// The SQLite URL must name a directory and end with a slash.
		cfg.SQLiteURL = "file:" + strings.TrimSuffix(dir, "/") + "/"
		where = dir
	case "postgresql":
		if *pgURL == "" {
			fail(2, "-postgresql-url (or $CXR_FERRETDB_POSTGRESQL_URL) is required with -handler postgresql")
		}
		// FerretDB opens PostgreSQL connections as the role a client names (authMechanism=PLAIN)
		// and, for a client that names none, with the URL's credentials. Those are for the index
		// keeper only: FerretDB gets the URL with a user that may not log in, so a client that
		// does not authenticate gets nothing, whatever it asks.
		anonymous, err := withUser(*pgURL, anonymousRole)
		if err != nil {
			fail(2, "bad -postgresql-url: %v", err)
		}
		cfg.PostgreSQLURL = anonymous
		where = redactURL(*pgURL)
	default:
		fail(2, "bad -handler %q: want sqlite or postgresql", *handler)
	}

	f, err := ferretdb.New(&cfg)
	if err != nil {
		fail(1, "%v", err)
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	if *handler == "postgresql" && *indexInterval > 0 {
		// Its own logger at info or below: what it creates is worth seeing even when
		// FerretDB itself logs warnings only.
		klevel := min(level, slog.LevelInfo)
		klog := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: klevel})).
			With("component", "index-keeper")
		k, err := newIndexKeeper(*pgURL, *indexInterval, klog)
		if err != nil {
			fail(1, "index keeper: %v", err)
		}
		defer k.close()
		go k.run(ctx)
	}

	logger.Warn("cxr-ferretdb listening", "uri", f.MongoDBURI(), "handler", *handler, "backend", where)
	if err := f.Run(ctx); err != nil {
		fail(1, "%v", err)
	}
}

// anonymousRole is no PostgreSQL role (pg_hba.conf lets no such user in): what FerretDB
// connects as for a client that did not authenticate.
const anonymousRole = "cxr-anonymous"

// withUser returns the PostgreSQL URL with its user replaced by user, without a password.
func withUser(s, user string) (string, error) {
	u, err := url.Parse(s)
	if err != nil {
		return "", err
	}
	u.User = url.User(user)
	return u.String(), nil
}

// redactURL drops the password from a PostgreSQL URL, for the log.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

func fail(code int, format string, args ...any) {
	fmt.Fprintf(os.Stderr, "cxr-ferretdb: "+format+"\n", args...)
	os.Exit(code)
}
