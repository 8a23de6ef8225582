package etcdtest

import (
	"context"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// A cluster of three keeps taking writes with one member down, refuses them with two down,
// and takes them again (with what it had) once they are back.
func TestClusterQuorum(t *testing.T) {
	c := StartCluster(t, 3)
	cli, err := clientv3.New(clientv3.Config{Endpoints: c.Endpoints(), DialTimeout: 2 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	put := func(v string, within time.Duration) error {
		deadline := time.Now().Add(within)
		for {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_, err := cli.Put(ctx, "k", v)
			cancel()
			if err == nil || time.Now().After(deadline) {
				return err
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	if err := put("1", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if r, err := cli.MemberList(ctx); err != nil || len(r.Members) != 3 {
		t.Fatalf("member list: %v %v", r, err)
	}
	c.Members[0].Kill()
	if err := put("2", 10*time.Second); err != nil {
		t.Fatalf("one of three down: %v", err)
	}
	c.Members[1].Kill()
	if err := put("3", 2*time.Second); err == nil {
		t.Fatal("two of three down: a write was accepted")
	}
	c.Members[0].Restart()
	c.Members[1].Restart()
	if err := put("4", 10*time.Second); err != nil {
		t.Fatalf("members back: %v", err)
	}
	r, err := cli.Get(ctx, "k")
	if err != nil || string(r.Kvs[0].Value) != "4" {
		t.Fatalf("k after the restart: %v %v", r, err)
	}
}
