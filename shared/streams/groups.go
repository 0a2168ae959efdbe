package streams

import (
	"context"
	"crypto/rand"
	_ "embed"
	"encoding/hex"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// GroupPrefix starts the name of every publisher replica's consumer group.
const GroupPrefix = "publisher:"

// GroupName returns the consumer group of a publisher replica.
func GroupName(replica string) string { return GroupPrefix + replica }

//go:embed group.lua
var groupLua string

var groupScript = redis.NewScript(groupLua)

// destroyScript destroys a group if its stream exists: XGROUP DESTROY on a
// missing key is an error that only its text tells apart.
var destroyScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
return redis.call('XGROUP', 'DESTROY', KEYS[1], ARGV[1])
`)

// GroupStart is where a created group starts delivering, and the
// generation of the feed it was created on (see write.lua: a new generation
// starts whenever the shard's data was lost).
type GroupStart struct {
	After      string // the group delivers entries after this id
	Generation string
}

// CreateGroup creates group on stream starting after id (MKSTREAM), and
// tolerates an existing group of that name.
func CreateGroup(ctx context.Context, c redis.Cmdable, stream, group, id string) error {
	err := c.XGroupCreateMkStream(ctx, stream, group, id).Err()
	if err != nil && !IsBusyGroup(err) {
		return fmt.Errorf("xgroup create %s %s: %w", stream, group, err)
	}
	return nil
}

// RecreateGroupAtTail destroys group on shard's feed if it exists and
// creates it afresh after the feed's last entry ("0-0" for an empty or
// missing feed). Reading the id first and creating the group at it, rather
// than at "$", tells the caller exactly where delivery starts.
func RecreateGroupAtTail(ctx context.Context, c redis.Scripter, l Layout, shard int, group string) (GroupStart, error) {
	return runGroupScript(ctx, c, l, shard, group, "tail", "0-0", "")
}

// RecreateLostGroup creates group again after Redis lost it (NOGROUP). If
// the feed is still of generation gen (an operator destroyed the group), the
// group starts after the id last dispatched; if it is a new feed (Redis
// restarted empty, FLUSHALL), it starts at its beginning, so that nothing
// written since is skipped, whatever its ids.
func RecreateLostGroup(ctx context.Context, c redis.Scripter, l Layout, shard int, group, after, gen string) (GroupStart, error) {
	return runGroupScript(ctx, c, l, shard, group, "after", after, gen)
}

func runGroupScript(ctx context.Context, c redis.Scripter, l Layout, shard int, group, mode, after, gen string) (GroupStart, error) {
	feed := l.Feed(shard)
	res, err := groupScript.Run(ctx, c, []string{feed, l.WriterMark(shard)}, group, mode, after, gen, newGeneration()).StringSlice()
	if err != nil {
		return GroupStart{}, fmt.Errorf("create group %s on %s: %w", group, feed, err)
	}
	if len(res) != 2 {
		return GroupStart{}, fmt.Errorf("create group %s on %s: script answered %q", group, feed, res)
	}
	return GroupStart{After: res[0], Generation: res[1]}, nil
}

// newGeneration returns a generation for a mark that a reader finds
// missing: random, so that it never equals one of an earlier feed.
func newGeneration() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return "r" + hex.EncodeToString(b)
}

// DestroyGroup removes group from stream; a missing stream is not an error.
func DestroyGroup(ctx context.Context, c redis.Scripter, stream, group string) error {
	if err := destroyScript.Run(ctx, c, []string{stream}, group).Err(); err != nil {
		return fmt.Errorf("xgroup destroy %s %s: %w", stream, group, err)
	}
	return nil
}
