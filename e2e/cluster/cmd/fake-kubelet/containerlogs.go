package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
)

// firstJSONObject returns the first complete stdout line of a CRI container log that is a JSON
// object: what the test container reports it saw. nil while there is none (yet).
//
// CRI log lines are "<RFC3339Nano time> <stdout|stderr> <P|F> <content>"; P marks a partial
// line that the next lines of the same stream continue, up to the one tagged F.
func firstJSONObject(path string) (json.RawMessage, error) {
	file, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer file.Close()
	reader := bufio.NewReader(file)
	var partial []byte
	for {
		line, err := reader.ReadBytes('\n')
		if err != nil {
			return nil, nil // EOF, possibly in the middle of a line still being written
		}
		fields := bytes.SplitN(bytes.TrimSuffix(line, []byte("\n")), []byte(" "), 4)
		if len(fields) < 3 || string(fields[1]) != "stdout" {
			continue
		}
		content := []byte{}
		if len(fields) == 4 {
			content = fields[3]
		}
		partial = append(partial, content...)
		if string(fields[2]) == "P" {
			continue
		}
		full := bytes.TrimSpace(partial)
		partial = nil
		if len(full) > 0 && full[0] == '{' && json.Valid(full) {
			return json.RawMessage(full), nil
		}
	}
}
