package mqtt

import (
	"io"
	"net"
	"sync"
	"testing"
)

// Writes from many goroutines arrive complete and, per writer, in order;
// Close flushes what is pending.
func TestBufConnGroupCommitKeepsOrder(t *testing.T) {
	a, b := net.Pipe()
	got := make(chan []byte)
	go func() { all, _ := io.ReadAll(b); got <- all }()
	c := newBufConn(a)
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w byte) {
			defer wg.Done()
			for i := 0; i < 1000; i++ {
				if _, err := c.Write([]byte{w, byte(i), byte(i >> 8)}); err != nil {
					t.Error(err)
					return
				}
			}
		}(byte(w))
	}
	wg.Wait()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	all := <-got
	if len(all) != 4*1000*3 {
		t.Fatalf("received %d bytes, want %d", len(all), 12000)
	}
	next := [4]int{}
	for i := 0; i < len(all); i += 3 {
		w, n := all[i], int(all[i+1])|int(all[i+2])<<8
		if n != next[w] {
			t.Fatalf("writer %d: got message %d, want %d", w, n, next[w])
		}
		next[w]++
	}
	if _, err := c.Write([]byte("late")); err == nil {
		t.Fatal("write after close succeeded")
	}
}
