// Go gorilla/websocket client for gorillaws's interop tests
// (tests/interop/test_gorilla_peer.py).
//
// usage: client [-compress] URL
// Talks to a gorillaws echo server: text, binary, empty, large and fragmented
// messages (a 256-byte write buffer splits them, inside UTF-8 characters), a
// ping, then "close:4001:server bye" (the server closes with that code), then a
// second connection that it closes itself with 4000 "client bye".  Prints one
// line "result JSON".
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/gorilla/websocket"
)

type result struct {
	Echoes      map[string]bool `json:"echoes"`
	Pongs       []string        `json:"pongs"`
	ServerClose []interface{}   `json:"server_close"`
	CloseEcho   []interface{}   `json:"client_close_echo"`
	Extensions  string          `json:"extensions"`
	Error       string          `json:"error,omitempty"`
}

func fail(res *result, err error) {
	res.Error = err.Error()
	out, _ := json.Marshal(res)
	fmt.Printf("result %s\n", out)
	os.Exit(1)
}

func main() {
	compress := flag.Bool("compress", false, "offer permessage-deflate")
	flag.Parse()
	url := flag.Arg(0)
	res := &result{Echoes: map[string]bool{}, Pongs: []string{}}
	dialer := websocket.Dialer{
		HandshakeTimeout:  10 * time.Second,
		WriteBufferSize:   256,
		EnableCompression: *compress,
	}
	c, resp, err := dialer.Dial(url, nil)
	if err != nil {
		fail(res, err)
	}
	res.Extensions = resp.Header.Get("Sec-WebSocket-Extensions")
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	c.SetPongHandler(func(data string) error {
		res.Pongs = append(res.Pongs, data)
		return nil
	})
	echo := func(name string, mt int, payload []byte) {
		if err := c.WriteMessage(mt, payload); err != nil {
			fail(res, err)
		}
		gt, got, err := c.ReadMessage()
		if err != nil {
			fail(res, err)
		}
		res.Echoes[name] = gt == mt && bytes.Equal(got, payload)
	}
	bin := make([]byte, 1024)
	for i := range bin {
		bin[i] = byte(i)
	}
	echo("text", websocket.TextMessage, []byte("hello \u03ba\u1f79\u03c3\u03bc\u03b5"))
	echo("empty", websocket.BinaryMessage, []byte{})
	echo("binary", websocket.BinaryMessage, bin)
	large := []byte(strings.Repeat("interop ", 32768))
	echo("large", websocket.TextMessage, large)
	echo("large-again", websocket.TextMessage, large)

	text := []byte(strings.Repeat("\u03ba\u1f79\u03c3\u03bc\u03b5", 300))
	w, err := c.NextWriter(websocket.TextMessage)
	if err != nil {
		fail(res, err)
	}
	for i := 0; i < len(text); i += 333 {
		end := i + 333
		if end > len(text) {
			end = len(text)
		}
		w.Write(text[i:end])
	}
	if err := w.Close(); err != nil {
		fail(res, err)
	}
	gt, got, err := c.ReadMessage()
	if err != nil {
		fail(res, err)
	}
	res.Echoes["fragmented"] = gt == websocket.TextMessage && bytes.Equal(got, text)

	c.WriteControl(websocket.PingMessage, []byte("ping!"), time.Now().Add(5*time.Second))
	echo("after-ping", websocket.TextMessage, []byte("after ping"))

	c.WriteMessage(websocket.TextMessage, []byte("close:4001:server bye"))
	_, _, err = c.ReadMessage()
	if ce, ok := err.(*websocket.CloseError); ok {
		res.ServerClose = []interface{}{ce.Code, ce.Text}
	} else {
		fail(res, fmt.Errorf("expected a close error, got %v", err))
	}
	c.Close()

	d, _, err := dialer.Dial(url, nil)
	if err != nil {
		fail(res, err)
	}
	d.SetReadDeadline(time.Now().Add(20 * time.Second))
	d.WriteMessage(websocket.TextMessage, []byte("before close"))
	if _, _, err := d.ReadMessage(); err != nil {
		fail(res, err)
	}
	d.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(4000, "client bye"), time.Now().Add(5*time.Second))
	for {
		if _, _, err := d.ReadMessage(); err != nil {
			if ce, ok := err.(*websocket.CloseError); ok {
				res.CloseEcho = []interface{}{ce.Code, ce.Text}
			} else {
				res.CloseEcho = []interface{}{-1, err.Error()}
			}
			break
		}
	}
	d.Close()
	out, _ := json.Marshal(res)
	fmt.Printf("result %s\n", out)
}
