// loadgen: HTTPS requests through an HTTP proxy (or direct), for scripts/bench.py.
//
// It prints one JSON object: requests, failures, status counts, elapsed seconds, req/s and
// latency percentiles in milliseconds. The proxy comes from -proxy or $HTTPS_PROXY (NO_PROXY is
// ignored, so loopback targets are proxied too); trusted roots from -cacert or $SSL_CERT_FILE.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	target := flag.String("url", "", "https URL to request")
	proxy := flag.String("proxy", os.Getenv("HTTPS_PROXY"), "proxy URL (empty: direct)")
	cacert := flag.String("cacert", os.Getenv("SSL_CERT_FILE"), "PEM file of trusted roots")
	concurrency := flag.Int("c", 16, "connections (workers)")
	total := flag.Int("n", 2000, "requests in all")
	header := flag.String("header", "", "one request header, Name: value")
	resolve := flag.String("resolve", "", "host:port=addr:port for direct requests")
	newconn := flag.Bool("newconn", false, "a new connection (CONNECT and TLS) for every request")
	nosni := flag.Bool("nosni", false, "send no SNI (as hey does)")
	flag.Parse()

	pool := x509.NewCertPool()
	if pem, err := os.ReadFile(*cacert); err == nil {
		pool.AppendCertsFromPEM(pem)
	} else {
		fail("cacert: %v", err)
	}
	u, err := url.Parse(*target)
	if err != nil {
		fail("url: %v", err)
	}
	tlsConfig := &tls.Config{RootCAs: pool, ServerName: u.Hostname()}
	if *nosni {
		// Verify the name ourselves, with no SNI on the wire.
		tlsConfig = &tls.Config{RootCAs: pool, InsecureSkipVerify: true, VerifyConnection: func(cs tls.ConnectionState) error {
			opts := x509.VerifyOptions{DNSName: u.Hostname(), Roots: pool, Intermediates: x509.NewCertPool()}
			for _, c := range cs.PeerCertificates[1:] {
				opts.Intermediates.AddCert(c)
			}
			_, err := cs.PeerCertificates[0].Verify(opts)
			return err
		}}
	}
	transport := func() *http.Transport {
		t := &http.Transport{TLSClientConfig: tlsConfig, MaxIdleConnsPerHost: *concurrency, DisableKeepAlives: *newconn,
			ForceAttemptHTTP2: false, TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{}}
		if *proxy != "" {
			p, err := url.Parse(*proxy)
			if err != nil {
				fail("proxy: %v", err)
			}
			t.Proxy = http.ProxyURL(p)
		}
		if *resolve != "" {
			from, to, _ := strings.Cut(*resolve, "=")
			dialer := &net.Dialer{}
			t.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
				if addr == from {
					addr = to
				}
				return dialer.DialContext(ctx, network, addr)
			}
		}
		return t
	}
	var name, value string
	if *header != "" {
		name, value, _ = strings.Cut(*header, ":")
		value = strings.TrimSpace(value)
	}

	var next int64 = -1
	latencies := make([]float64, *total)
	statuses := map[int]int{}
	failures := 0
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < *concurrency; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := &http.Client{Transport: transport(), Timeout: 30 * time.Second}
			for {
				i := atomic.AddInt64(&next, 1)
				if i >= int64(*total) {
					return
				}
				req, _ := http.NewRequest("GET", *target, nil)
				if name != "" {
					req.Header.Set(name, value)
				}
				began := time.Now()
				resp, err := client.Do(req)
				status := 0
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					status = resp.StatusCode
				}
				latencies[i] = float64(time.Since(began).Microseconds()) / 1000
				mu.Lock()
				if err != nil {
					failures++
					if failures == 1 {
						fmt.Fprintln(os.Stderr, "loadgen:", err)
					}
				} else {
					statuses[status]++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start).Seconds()
	sort.Float64s(latencies)
	pct := func(p float64) float64 { return latencies[int(p*float64(len(latencies)-1))] }
	codes := map[string]int{}
	for k, v := range statuses {
		codes[fmt.Sprint(k)] = v
	}
	json.NewEncoder(os.Stdout).Encode(map[string]any{
		"requests": *total, "failures": failures, "statuses": codes, "elapsed": elapsed,
		"rps": float64(*total) / elapsed, "p50": pct(0.5), "p99": pct(0.99),
	})
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "loadgen: "+format+"\n", args...)
	os.Exit(2)
}
