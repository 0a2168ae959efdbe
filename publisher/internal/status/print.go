package status

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"time"
)

// WriteJSON writes the report as one JSON object.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteText writes the report for a person: the collector, a line per
// feed, a line per replica (its shards summed), then the problems.
func (r *Report) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "tickwire status at %s, prefix %q\n\n", r.Time.UTC().Format(time.RFC3339), r.Prefix)
	if r.Collector.Holder == "" {
		fmt.Fprintf(tw, "collector\tnone holds the lease\n\n")
	} else {
		fmt.Fprintf(tw, "collector\t%s holds the lease (%v left)\n\n", r.Collector.Holder, round(r.Collector.TTL))
	}
	fmt.Fprintln(tw, "FEED\tLENGTH\tLAST ENTRY\tWRITTEN")
	for _, f := range r.Feeds {
		last, ago := "-", "-"
		if f.LastID != "" {
			last, ago = f.LastID, ageText(f.LastAge)
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\n", f.Key, f.Length, last, ago)
	}
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "REPLICA\tSTATE\tHEARTBEAT\tCONNS\tLAG\tPENDING\tLAST READ\tOLDEST UNREAD\tVERSION")
	for _, rep := range r.Replicas {
		writeReplica(tw, rep)
	}
	if len(r.Replicas) == 0 {
		fmt.Fprintln(tw, "(none)")
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	return writeProblems(w, r.Problems)
}

// writeReplica writes one replica's line, its shards summed: lag and
// pending added, the longest idle and wait.
func writeReplica(w io.Writer, rep Replica) {
	lag, pending := int64(0), int64(0)
	idle, waiting := Duration(-1), Duration(0)
	for _, g := range rep.Shards {
		if g.Lag < 0 || lag < 0 {
			lag = -1
		} else {
			lag += g.Lag
		}
		pending += g.Pending
		idle = max(idle, g.Idle)
		waiting = max(waiting, g.Waiting)
	}
	beat := "-"
	if rep.Heartbeat >= 0 {
		beat = ageText(rep.Heartbeat)
	}
	version := rep.Version
	if version == "" {
		version = "-"
	}
	fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", rep.ID, rep.State, beat, known(rep.Conns), known(lag), pending,
		ageText(idle), waitText(waiting), version)
}

func writeProblems(w io.Writer, problems []string) error {
	if len(problems) == 0 {
		_, err := fmt.Fprintln(w, "\nall well")
		return err
	}
	if _, err := fmt.Fprintf(w, "\n%d problem(s):\n", len(problems)); err != nil {
		return err
	}
	for _, p := range problems {
		if _, err := fmt.Fprintf(w, "  %s\n", p); err != nil {
			return err
		}
	}
	return nil
}

func known(n int64) string {
	if n < 0 {
		return "?"
	}
	return strconv.FormatInt(n, 10)
}

func ageText(d Duration) string {
	if d < 0 {
		return "never"
	}
	return round(d).String() + " ago"
}

func waitText(d Duration) string {
	if d <= 0 {
		return "-"
	}
	return round(d).String()
}
