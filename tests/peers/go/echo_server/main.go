// Go gorilla/websocket echo server for gorillaws's interop tests
// (tests/interop/test_gorilla_peer.py).
//
// It listens on 127.0.0.1 (a free port), prints "listening PORT", and echoes
// every message with its type, streaming it from reader to writer (the
// writer's 1 KiB buffer makes long messages go out in fragments).  The text
// message "close:CODE:REASON" makes it close with that code and reason; a
// close frame from the client is printed as "closed CODE REASON".  With
// -compress it negotiates permessage-deflate.  It exits when stdin closes.
package main

import (
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/websocket"
)

func main() {
	compress := flag.Bool("compress", false, "negotiate permessage-deflate")
	flag.Parse()

	upgrader := websocket.Upgrader{
		ReadBufferSize:    4096,
		WriteBufferSize:   1024,
		EnableCompression: *compress,
		CheckOrigin:       func(r *http.Request) bool { return true },
	}
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		c, err := upgrader.Upgrade(w, r, nil)
		if err != nil {
			fmt.Println("error upgrade:", err)
			return
		}
		defer c.Close()
		fmt.Printf("extensions %q\n", r.Header.Get("Sec-WebSocket-Extensions"))
		for {
			mt, rd, err := c.NextReader()
			if err != nil {
				if ce, ok := err.(*websocket.CloseError); ok {
					fmt.Printf("closed %d %s\n", ce.Code, ce.Text)
				} else {
					fmt.Println("error read:", err)
				}
				return
			}
			data, err := io.ReadAll(rd)
			if err != nil {
				fmt.Println("error read:", err)
				return
			}
			if mt == websocket.TextMessage && strings.HasPrefix(string(data), "close:") {
				parts := strings.SplitN(string(data), ":", 3)
				code, _ := strconv.Atoi(parts[1])
				msg := websocket.FormatCloseMessage(code, parts[2])
				c.WriteControl(websocket.CloseMessage, msg, time.Now().Add(5*time.Second))
				// Wait for the client's close frame, then drop the connection.
				c.SetReadDeadline(time.Now().Add(5 * time.Second))
				for {
					if _, _, err := c.NextReader(); err != nil {
						return
					}
				}
			}
			wr, err := c.NextWriter(mt)
			if err != nil {
				fmt.Println("error write:", err)
				return
			}
			wr.Write(data)
			if err := wr.Close(); err != nil {
				fmt.Println("error write:", err)
				return
			}
		}
	})

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println("error listen:", err)
		os.Exit(1)
	}
	go func() {
		io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	}()
	fmt.Printf("listening %d\n", ln.Addr().(*net.TCPAddr).Port)
	http.Serve(ln, nil)
}
