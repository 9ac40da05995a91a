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

func TestFilterMatches(t *testing.T) {
	for _, c := range []struct {
		filter, topic string
		want          bool
	}{
		{"a/b", "a/b", true}, {"a/b", "a/c", false}, {"a/b", "a/b/c", false}, {"a/b/c", "a/b", false},
		{"a/+", "a/b", true}, {"a/+", "a/b/c", false}, {"a/+", "a", false}, {"+/+", "a/b", true}, {"a/+/c", "a//c", true},
		{"a/#", "a/b/c", true}, {"a/#", "a", true}, {"a/#", "b/c", false}, {"#", "a/b", true}, {"#", "$SYS/x", false},
		{"+/x", "$SYS/x", false}, {"$SYS/#", "$SYS/x", true}, {"rb/leak/+", "rb/leak/leak00001", true}, {"rb/leak/+", "rb/temp/x", false},
		{"a/b/", "a/b/", true}, {"a/b/", "a/b", false}, {"/a", "/a", true}, {"+/a", "/a", true},
	} {
		if got := filterMatches(c.filter, c.topic); got != c.want {
			t.Errorf("filterMatches(%q, %q) = %v, want %v", c.filter, c.topic, got, c.want)
		}
	}
}
