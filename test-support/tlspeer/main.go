// Command tlspeer is the Go side of certrotate's mutual-TLS tests: Envoy Gateway's TLS stack
// (crypto/tls), in-repo. Standard library only.
//
//	tlspeer serve  -listen 127.0.0.1:0 -dir DIR [-once] [-quiet]
//	tlspeer client -addr HOST:PORT -dir DIR [-n 10] [-interval 0s] [-server-name NAME]
//
// DIR holds tls.crt, tls.key and ca.crt, as a Secret mounted by the kubelet does.
//
// The server re-reads all three files on every handshake through
// tls.Config.GetConfigForClient and requires and verifies a client certificate issued under
// ca.crt, as Envoy Gateway's xDS server does (internal/crypto: RequireAndVerifyClientCert,
// ClientCAs from ca.crt). With -once it reads them only at start instead (a component that
// loads its certificates at start, or a pod that mounts them with subPath). It prints
// {"listening":"ADDR"} once bound, one JSON line per handshake (none with -quiet), and a
// summary line when its standard input closes or it gets SIGTERM/SIGINT.
//
// The client connects -n times, re-reading its own certificate, key and ca.crt (its roots)
// for every connection, and counts the connections whose handshake both sides accepted (the
// server answers "ok\n" after its handshake succeeds: with TLS 1.3 a client learns that the
// server refused its certificate only on its first read). It prints one summary line:
//
//	{"attempts":N,"ok":N,"failed":N,"errors":{"message":count}}
//
// and exits 0 when every attempt succeeded, 1 otherwise (2 on a usage error).
package main

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "serve":
		err = serve(os.Args[2:])
	case "client":
		var ok bool
		ok, err = client(os.Args[2:])
		if err == nil && !ok {
			os.Exit(1)
		}
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "tlspeer: %v\n", err)
		os.Exit(2)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: tlspeer serve -listen ADDR -dir DIR | tlspeer client -addr ADDR -dir DIR [-n N] [-interval D] [-server-name NAME]")
	os.Exit(2)
}

// files reads DIR/tls.crt, DIR/tls.key and DIR/ca.crt: the key pair and a pool of ca.crt.
// Where DIR has the kubelet's atomic-writer layout (DIR/..data, a link to the current
// version folder), the three are read from the version folder it names at that moment, so
// a swap between two reads never pairs one version's certificate with another's key (what
// the layout is for; a consumer reading DIR/KEY one by one can see such a pair).
// A version folder can be removed between resolving ..data and reading it (the writer
// removes the old version after the swap): then ..data is resolved again.
func files(dir string) (tls.Certificate, *x509.CertPool, error) {
	for attempt := 1; ; attempt++ {
		version := dir
		if v, err := filepath.EvalSymlinks(filepath.Join(dir, "..data")); err == nil {
			version = v
		}
		cert, pool, err := filesIn(version)
		if err == nil || version == dir || attempt == 3 || !errors.Is(err, fs.ErrNotExist) {
			return cert, pool, err
		}
	}
}

func filesIn(dir string) (tls.Certificate, *x509.CertPool, error) {
	cert, err := tls.LoadX509KeyPair(filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key"))
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("loading %s/tls.crt and tls.key: %w", dir, err)
	}
	caPEM, err := os.ReadFile(filepath.Join(dir, "ca.crt"))
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("reading %s/ca.crt: %w", dir, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return tls.Certificate{}, nil, fmt.Errorf("%s/ca.crt holds no certificate", dir)
	}
	return cert, pool, nil
}

var out = struct {
	sync.Mutex
	enc *json.Encoder
}{enc: json.NewEncoder(os.Stdout)}

func emit(v any) {
	out.Lock()
	defer out.Unlock()
	_ = out.enc.Encode(v)
}

func serve(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	listen := fs.String("listen", "127.0.0.1:0", "address to listen on")
	dir := fs.String("dir", "", "folder holding tls.crt, tls.key and ca.crt")
	startOnly := fs.Bool("once", false, "read the files once, at start (a component that loads "+
		"its certificates only at start, or a pod mounting them with subPath)")
	quiet := fs.Bool("quiet", false, "no line per handshake, only the summary")
	_ = fs.Parse(args)
	if *dir == "" {
		return errors.New("serve: -dir is required")
	}
	logHandshake := func(v map[string]string) {
		if !*quiet {
			emit(v)
		}
	}
	cfg := &tls.Config{
		MinVersion: tls.VersionTLS12,
		// Every handshake gets a configuration read from the files at that moment, so a
		// rotation is picked up by the next connection without a restart.
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			cert, pool, err := files(*dir)
			if err != nil {
				return nil, err
			}
			return &tls.Config{
				MinVersion:   tls.VersionTLS12,
				Certificates: []tls.Certificate{cert},
				ClientAuth:   tls.RequireAndVerifyClientCert,
				ClientCAs:    pool,
			}, nil
		},
	}
	if *startOnly {
		cert, pool, err := files(*dir)
		if err != nil {
			return err
		}
		cfg = &tls.Config{
			MinVersion:   tls.VersionTLS12,
			Certificates: []tls.Certificate{cert},
			ClientAuth:   tls.RequireAndVerifyClientCert,
			ClientCAs:    pool,
		}
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	emit(map[string]string{"listening": ln.Addr().String()})

	var mu sync.Mutex
	var inflight sync.WaitGroup
	counts := map[string]int{"ok": 0, "failed": 0}
	done := make(chan struct{})
	var once sync.Once
	stop := func() { once.Do(func() { close(done) }) }
	go func() {
		// Standard input closing means the test that started us is gone.
		_, _ = io.Copy(io.Discard, os.Stdin)
		stop()
	}()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	go func() { <-sigs; stop() }()
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			inflight.Add(1)
			go func() {
				defer inflight.Done()
				defer conn.Close()
				_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
				tc := tls.Server(conn, cfg)
				err := tc.Handshake()
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					counts["failed"]++
					logHandshake(map[string]string{"handshake": "failed", "error": err.Error()})
					return
				}
				counts["ok"]++
				subject := tc.ConnectionState().PeerCertificates[0].Subject.CommonName
				logHandshake(map[string]string{"handshake": "ok", "client": subject})
				_, _ = tc.Write([]byte("ok\n"))
				_ = tc.Close()
			}()
		}
	}()
	<-done
	_ = ln.Close()
	// Count the handshakes still under way (each is bounded by its deadline).
	inflight.Wait()
	mu.Lock()
	defer mu.Unlock()
	emit(map[string]int{"handshakes_ok": counts["ok"], "handshakes_failed": counts["failed"]})
	return nil
}

func client(args []string) (bool, error) {
	fs := flag.NewFlagSet("client", flag.ExitOnError)
	addr := fs.String("addr", "", "server address")
	dir := fs.String("dir", "", "folder holding tls.crt, tls.key and ca.crt")
	n := fs.Int("n", 10, "connections to make")
	interval := fs.Duration("interval", 0, "pause between connections")
	serverName := fs.String("server-name", "localhost", "name the server certificate must carry")
	_ = fs.Parse(args)
	if *addr == "" || *dir == "" || *n < 1 {
		return false, errors.New("client: -addr, -dir and -n >= 1 are required")
	}
	type summary struct {
		Attempts int            `json:"attempts"`
		OK       int            `json:"ok"`
		Failed   int            `json:"failed"`
		Errors   map[string]int `json:"errors"`
	}
	s := summary{Errors: map[string]int{}}
	for i := 0; i < *n; i++ {
		if i > 0 && *interval > 0 {
			time.Sleep(*interval)
		}
		s.Attempts++
		if err := connectOnce(*addr, *dir, *serverName); err != nil {
			s.Failed++
			s.Errors[err.Error()]++
		} else {
			s.OK++
		}
	}
	emit(s)
	return s.Failed == 0, nil
}

func connectOnce(addr, dir, serverName string) error {
	cert, roots, err := files(dir)
	if err != nil {
		return err
	}
	d := &net.Dialer{Timeout: 5 * time.Second}
	conn, err := tls.DialWithDialer(d, "tcp", addr, &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{cert},
		RootCAs:      roots,
		ServerName:   serverName,
	})
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return fmt.Errorf("reading the server's answer: %w", err)
	}
	if line != "ok\n" {
		return fmt.Errorf("unexpected answer %q", line)
	}
	return nil
}
