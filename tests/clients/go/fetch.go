// GET a URL with Go's net/http default client under `authsome run`: it takes the proxy
// (and its credentials) from HTTPS_PROXY and the CA bundle from SSL_CERT_FILE, nothing else.
// Run with: go run fetch.go URL
package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
)

func main() {
	req, err := http.NewRequest("GET", os.Args[1], nil)
	if err != nil {
		panic(err)
	}
	req.Header.Set("Authorization", "Bearer "+os.Getenv("X_ACCESS_TOKEN"))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(string(body))
	if resp.StatusCode != 200 {
		os.Exit(1)
	}
}
