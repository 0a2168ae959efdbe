// Package pipeline runs the collector's stages in order: a source, the
// derive stage and the batcher, and stops them in that order so that
// nothing the source emitted is lost at shutdown. A Pipeline is run once,
// by one goroutine; it starts and stops the stages' goroutines itself.
package pipeline

import (
	"context"
	"errors"
	"fmt"

	"github.com/tickwire/tickwire/collector/internal/batch"
	"github.com/tickwire/tickwire/collector/internal/derive"
	"github.com/tickwire/tickwire/collector/internal/source"
)

// Pipeline is a source feeding the derive stage feeding the batcher.
type Pipeline struct {
	src   source.Source
	stage *derive.Stage
	batch *batch.Batcher
}

// New returns the pipeline of src, stage and b; stage must pass its events
// on to b.
func New(src source.Source, stage *derive.Stage, b *batch.Batcher) *Pipeline {
	return &Pipeline{src: src, stage: stage, batch: b}
}

// Run runs the source through the derive stage into the batcher. When the
// source stops (ctx ended, or its input did), the stage's open bars are
// flushed and the batcher makes its final flush; Run returns once that is
// done: nothing the source emitted arrives after it. It returns the
// source's error and that of the final flush, if any.
func (p *Pipeline) Run(ctx context.Context) error {
	batchCtx, stopBatch := context.WithCancel(context.WithoutCancel(ctx))
	defer stopBatch()
	flushed := make(chan error, 1)
	go func() { flushed <- p.batch.Run(batchCtx) }()
	stageCtx, stopStage := context.WithCancel(ctx)
	defer stopStage()
	staged := make(chan struct{})
	go func() {
		defer close(staged)
		_ = p.stage.Run(stageCtx) // returns nil when stageCtx ends
	}()

	srcErr := p.src.Run(ctx, p.stage.Emit)
	stopStage()
	<-staged
	p.stage.Flush()
	stopBatch()
	flushErr := <-flushed
	if srcErr != nil {
		srcErr = fmt.Errorf("source: %w", srcErr)
	}
	return errors.Join(srcErr, flushErr)
}
