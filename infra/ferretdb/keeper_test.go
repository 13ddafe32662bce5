package main

import (
	"slices"
	"strings"
	"testing"
)

func TestGinIndexName(t *testing.T) {
	long := strings.Repeat("x", 300)
	cases := [][2]string{
		{"requests_1a2b3c4d", "_id"},
		{"requests_1a2b3c4d", "idempotency_key"},
		{long, long},
		{"t_00000000", "Ünïcode field name with spaces"},
		{"t_00000000", "a'b\"c"},
	}
	seen := map[string]bool{}
	for _, c := range cases {
		n := ginIndexName(c[0], c[1])
		if len(n) > 63 {
			t.Errorf("%q: %d bytes", n, len(n))
		}
		if n != ginIndexName(c[0], c[1]) {
			t.Errorf("%q: not deterministic", n)
		}
		if strings.Trim(n, "abcdefghijklmnopqrstuvwxyz0123456789_") != "" {
			t.Errorf("%q: unexpected characters", n)
		}
		if !strings.HasSuffix(n, "_gin") || strings.HasSuffix(n, "_idx") {
			t.Errorf("%q: must not look like FerretDB's own names", n)
		}
		if seen[n] {
			t.Errorf("%q: duplicate", n)
		}
		seen[n] = true
	}
	// Fields that sanitise alike still get different names.
	if ginIndexName("t", "a.b") == ginIndexName("t", "a-b") {
		t.Error("hash does not separate a.b and a-b")
	}
}

func TestIndexedFields(t *testing.T) {
	meta := `[{"name":"_id_","pgindex":"r_1_id__67399184_idx","key":{"_id":1},"unique":true},
		{"name":"submitter_1_idempotency_key_1","key":{"submitter":1,"idempotency_key":1},"unique":true},
		{"name":"state_1","key":{"state":1,"dispatched_at":-1}},
		{"name":"nested","key":{"image.sha256":1}},
		{"name":"again","key":{"state":-1}}]`
	got := indexedFields([]byte(meta))
	slices.Sort(got[1:])
	want := []string{"_id", "dispatched_at", "idempotency_key", "state", "submitter"}
	if !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	for _, bad := range []string{"", "null", "{}", "[1,2]", "not json"} {
		if got := indexedFields([]byte(bad)); !slices.Equal(got, []string{"_id"}) {
			t.Errorf("%q: got %v", bad, got)
		}
	}
}
