// Command etcd is the etcd server: the same entry point as the upstream etcd binary (the root
// module go.etcd.io/etcd/v3, whose main.go is only this call, is not published for this release).
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
