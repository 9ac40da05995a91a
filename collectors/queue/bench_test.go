package queue_test

import (
	"testing"

	"github.com/propgate/gateway/collectors/queue"
	"github.com/propgate/gateway/collectors/queue/queuetest"
)

// BenchmarkAppendFlush100 is one ack batch: 100 records of 200 bytes, then
// Sync (what Writer.Flush does before the MQTT collector sends PUBACK). It
// reports the fdatasyncs and directory fsyncs per batch.
//
//	go test -run '^$' -bench AppendFlush -benchtime 2s -count 3 ./collectors/queue
func BenchmarkAppendFlush100(b *testing.B) { benchBatches(b, true, queue.OSFS{}) }

// BenchmarkAppendFlush100Counted runs through the counting file layer (a
// little slower) to report the fdatasyncs and directory fsyncs per batch.
func BenchmarkAppendFlush100Counted(b *testing.B) { benchBatches(b, true, queuetest.New()) }

// BenchmarkAppend100 is the same batch without Sync: what Flush cost before
// it became durable (page cache only).
func BenchmarkAppend100(b *testing.B) { benchBatches(b, false, queue.OSFS{}) }

func benchBatches(b *testing.B, sync bool, fs queue.FS) {
	q, err := queue.Open(queue.Options{Dir: b.TempDir(), SegmentBytes: 8 << 20, MaxBytes: 1 << 30, FS: fs})
	if err != nil {
		b.Fatal(err)
	}
	defer q.Close()
	rec := make([]byte, 200)
	b.SetBytes(100 * int64(len(rec)))
	counted, _ := fs.(*queuetest.FaultFS)
	var files0, dirs0 int
	if counted != nil {
		files0, dirs0 = counted.Syncs()
	}
	b.ResetTimer()
	for b.Loop() {
		for range 100 {
			if err := q.Append(rec, 4); err != nil {
				b.Fatal(err)
			}
		}
		if sync {
			if err := q.Sync(); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.StopTimer()
	if counted != nil {
		files, dirs := counted.Syncs()
		b.ReportMetric(float64(files-files0)/float64(b.N), "fdatasync/batch")
		b.ReportMetric(float64(dirs-dirs0)/float64(b.N), "dirsync/batch")
	}
}
