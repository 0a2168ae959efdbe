package streams

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func (f fixture) xadd(t *testing.T, stream string, n int) []string {
	t.Helper()
	ids := make([]string, n)
	for i := range ids {
		id, err := f.c.XAdd(t.Context(), &redis.XAddArgs{Stream: stream, Values: []any{"n", i}}).Result()
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = id
	}
	return ids
}

// readGroup reads what the group delivers next to consumer c1, without
// blocking.
func (f fixture) readGroup(t *testing.T, stream, group string) ([]string, error) {
	t.Helper()
	res, err := f.c.XReadGroup(t.Context(), &redis.XReadGroupArgs{
		Group: group, Consumer: "c1", Streams: []string{stream, ">"}, Count: 100, Block: -1,
	}).Result()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, s := range res {
		for _, m := range s.Messages {
			ids = append(ids, m.ID)
		}
	}
	return ids, nil
}

func (f fixture) groups(t *testing.T, stream string) map[string]redis.XInfoGroup {
	t.Helper()
	gs, err := f.c.XInfoGroups(t.Context(), stream).Result()
	if err != nil {
		t.Fatalf("xinfo groups %s: %v", stream, err)
	}
	out := make(map[string]redis.XInfoGroup)
	for _, g := range gs {
		out[g.Name] = g
	}
	return out
}

func TestCreateGroup(t *testing.T) {
	f := newFixture(t)
	const stream, group = "md:{0}:feed", "publisher:a"

	// A missing stream is created (MKSTREAM).
	if err := CreateGroup(t.Context(), f.c, stream, group, "$"); err != nil {
		t.Fatalf("CreateGroup on a missing stream: %v", err)
	}
	if _, ok := f.groups(t, stream)[group]; !ok {
		t.Fatal("group not created")
	}
	// An existing group is tolerated (BUSYGROUP), and left as it is.
	ids := f.xadd(t, stream, 2)
	if err := CreateGroup(t.Context(), f.c, stream, group, "0"); err != nil {
		t.Fatalf("CreateGroup of an existing group: %v", err)
	}
	got, err := f.readGroup(t, stream, group)
	if err != nil || len(got) != 2 || got[0] != ids[0] {
		t.Errorf("group delivers %v, %v; want %v", got, err, ids)
	}
}

func TestCreateGroupOtherErrors(t *testing.T) {
	f := newFixture(t)
	if err := f.c.Set(t.Context(), "md:{0}:feed", "x", 0).Err(); err != nil {
		t.Fatal(err)
	}
	err := CreateGroup(t.Context(), f.c, "md:{0}:feed", "g", "$")
	if err == nil || IsBusyGroup(err) {
		t.Fatalf("CreateGroup on a string key = %v, want WRONGTYPE", err)
	}
	if err := CreateGroup(t.Context(), f.c, "md:{0}:other", "g", "not-an-id"); err == nil {
		t.Error("CreateGroup at a malformed id returned nil")
	}
}

func TestIsBusyGroup(t *testing.T) {
	f := newFixture(t)
	if err := f.c.XGroupCreateMkStream(t.Context(), "s", "g", "$").Err(); err != nil {
		t.Fatal(err)
	}
	err := f.c.XGroupCreateMkStream(t.Context(), "s", "g", "$").Err()
	if !IsBusyGroup(err) {
		t.Errorf("IsBusyGroup(%v) = false", err)
	}
	if !IsBusyGroup(fmt.Errorf("wrapped: %w", err)) {
		t.Error("IsBusyGroup of a wrapped BUSYGROUP = false")
	}
	if IsBusyGroup(nil) || IsBusyGroup(errors.New("BUSYGROUP but not from Redis")) || IsNoGroup(err) {
		t.Error("IsBusyGroup true for nil or a non-Redis error, or IsNoGroup true for BUSYGROUP")
	}
}

func TestRecreateGroupAtTail(t *testing.T) {
	f := newFixture(t)
	const stream, group = "md:{0}:feed", "publisher:a"
	old := f.xadd(t, stream, 3)
	if err := CreateGroup(t.Context(), f.c, stream, group, "0"); err != nil {
		t.Fatal(err)
	}
	// Leave entries pending in the old group.
	if got, err := f.readGroup(t, stream, group); err != nil || len(got) != 3 {
		t.Fatalf("read old group: %v %v", got, err)
	}

	start, err := RecreateGroupAtTail(t.Context(), f.c, mustLayout(t, 1), 0, group)
	if err != nil {
		t.Fatal(err)
	}
	last := start.After
	if last != old[2] {
		t.Errorf("RecreateGroupAtTail = %q, want the last id %q", last, old[2])
	}
	g := f.groups(t, stream)[group]
	if g.Pending != 0 || g.LastDeliveredID != old[2] {
		t.Errorf("recreated group: pending %d, last delivered %s; want 0, %s", g.Pending, g.LastDeliveredID, old[2])
	}
	if got, err := f.readGroup(t, stream, group); err != nil || len(got) != 0 {
		t.Errorf("recreated group delivers old entries %v, %v", got, err)
	}
	newer := f.xadd(t, stream, 2)
	got, err := f.readGroup(t, stream, group)
	if err != nil || fmt.Sprint(got) != fmt.Sprint(newer) {
		t.Errorf("recreated group delivers %v, %v; want only the newer %v", got, err, newer)
	}
}

func TestRecreateGroupAtTailOfEmptyStream(t *testing.T) {
	f := newFixture(t)
	const stream, group = "md:{0}:feed", "publisher:a"
	// An existing stream without entries (trimmed, or created by MKSTREAM).
	if err := CreateGroup(t.Context(), f.c, stream, "other", "$"); err != nil {
		t.Fatal(err)
	}
	start, err := RecreateGroupAtTail(t.Context(), f.c, mustLayout(t, 1), 0, group)
	if last := start.After; err != nil || last != "0-0" {
		t.Fatalf("RecreateGroupAtTail of an empty stream = %q, %v; want 0-0", start.After, err)
	}
	ids := f.xadd(t, stream, 1)
	if got, err := f.readGroup(t, stream, group); err != nil || len(got) != 1 || got[0] != ids[0] {
		t.Errorf("group delivers %v, %v; want %v", got, err, ids)
	}
}

// TestRecreateGroupAtTailOfMissingStream: a publisher starting before the
// collector has written anything finds no feed stream.
func TestRecreateGroupAtTailOfMissingStream(t *testing.T) {
	f := newFixture(t)
	const stream, group = "md:{0}:feed", "publisher:a"
	start, err := RecreateGroupAtTail(t.Context(), f.c, mustLayout(t, 1), 0, group)
	if last := start.After; err != nil || last != "0-0" {
		t.Fatalf("RecreateGroupAtTail of a missing stream = %q, %v; want 0-0", start.After, err)
	}
	if _, ok := f.groups(t, stream)[group]; !ok {
		t.Error("group not created")
	}
}

func TestDestroyGroup(t *testing.T) {
	f := newFixture(t)
	const stream, group = "md:{0}:feed", "publisher:a"
	if err := CreateGroup(t.Context(), f.c, stream, group, "$"); err != nil {
		t.Fatal(err)
	}
	if err := DestroyGroup(t.Context(), f.c, stream, group); err != nil {
		t.Fatalf("DestroyGroup: %v", err)
	}
	if _, ok := f.groups(t, stream)[group]; ok {
		t.Error("group still exists")
	}
	// A group that no longer exists, on a stream that does: no error.
	if err := DestroyGroup(t.Context(), f.c, stream, group); err != nil {
		t.Errorf("DestroyGroup of a missing group: %v", err)
	}
}

func TestDestroyGroupOnMissingStream(t *testing.T) {
	f := newFixture(t)
	if err := DestroyGroup(t.Context(), f.c, "md:{0}:feed", "publisher:a"); err != nil {
		t.Errorf("DestroyGroup on a missing stream = %v, want nil", err)
	}
}

func TestIsNoGroup(t *testing.T) {
	f := newFixture(t)
	const stream, group = "md:{0}:feed", "publisher:a"
	if err := CreateGroup(t.Context(), f.c, stream, group, "$"); err != nil {
		t.Fatal(err)
	}
	if err := DestroyGroup(t.Context(), f.c, stream, group); err != nil {
		t.Fatal(err)
	}
	_, err := f.readGroup(t, stream, group)
	if !IsNoGroup(err) {
		t.Errorf("IsNoGroup(%v) = false after the group was destroyed", err)
	}
	if !IsNoGroup(fmt.Errorf("xreadgroup: %w", err)) {
		t.Error("IsNoGroup of a wrapped NOGROUP = false")
	}
	if IsBusyGroup(err) {
		t.Error("IsBusyGroup(NOGROUP) = true")
	}

	// The stream itself gone, as after a Redis restart without data, and a
	// blocked read: NOGROUP as well.
	if err := f.c.Del(t.Context(), stream).Err(); err != nil {
		t.Fatal(err)
	}
	err = f.c.XReadGroup(t.Context(), &redis.XReadGroupArgs{
		Group: group, Consumer: "c1", Streams: []string{stream, ">"}, Count: 1, Block: 50 * time.Millisecond,
	}).Err()
	if !IsNoGroup(err) {
		t.Errorf("IsNoGroup(%v) = false for a missing stream", err)
	}
	if IsNoGroup(nil) || IsNoGroup(errors.New("NOGROUP from elsewhere")) || IsNoGroup(redis.Nil) {
		t.Error("IsNoGroup true for nil, a non-Redis error or redis.Nil")
	}
}
