package streams

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"
)

// GroupPrefix starts the name of every publisher replica's consumer group.
const GroupPrefix = "publisher:"

// GroupName returns the consumer group of a publisher replica.
func GroupName(replica string) string { return GroupPrefix + replica }

// IsBusyGroup reports whether err is Redis's answer to creating a group
// that already exists.
func IsBusyGroup(err error) bool { return redisErrPrefix(err, "BUSYGROUP") }

// IsNoGroup reports whether err says the group or its stream does not exist
// (Redis lost its data, or an operator destroyed the group).
func IsNoGroup(err error) bool { return redisErrPrefix(err, "NOGROUP") }

func redisErrPrefix(err error, prefix string) bool {
	var rerr redis.Error
	return errors.As(err, &rerr) && strings.HasPrefix(rerr.Error(), prefix)
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

// RecreateGroupAtTail destroys group on stream if it exists and creates it
// afresh after the stream's last entry, returning that entry's id ("0-0" for
// an empty stream). Reading the id first and creating the group at it, rather
// than at "$", tells the caller exactly where delivery starts.
func RecreateGroupAtTail(ctx context.Context, c redis.Cmdable, stream, group string) (string, error) {
	if err := c.XGroupDestroy(ctx, stream, group).Err(); err != nil && !isNoSuchKey(err) {
		return "", fmt.Errorf("xgroup destroy %s %s: %w", stream, group, err)
	}
	last := "0-0"
	msgs, err := c.XRevRangeN(ctx, stream, "+", "-", 1).Result()
	if err != nil {
		return "", fmt.Errorf("xrevrange %s: %w", stream, err)
	}
	if len(msgs) == 1 {
		last = msgs[0].ID
	}
	if err := CreateGroup(ctx, c, stream, group, last); err != nil {
		return "", err
	}
	return last, nil
}

// DestroyGroup removes group from stream; a missing stream is not an error.
func DestroyGroup(ctx context.Context, c redis.Cmdable, stream, group string) error {
	if err := c.XGroupDestroy(ctx, stream, group).Err(); err != nil && !isNoSuchKey(err) {
		return fmt.Errorf("xgroup destroy %s %s: %w", stream, group, err)
	}
	return nil
}

// isNoSuchKey matches Redis's error for XGROUP on a stream that does not
// exist ("ERR The XGROUP subcommand requires the key to exist...").
func isNoSuchKey(err error) bool {
	var rerr redis.Error
	return errors.As(err, &rerr) && strings.Contains(rerr.Error(), "requires the key to exist")
}
