package main

import (
	"fmt"
	"io"

	"github.com/outbound-mail/outbound/internal/apikey"
	"github.com/outbound-mail/outbound/internal/seal"
)

// printAPIKey makes a token for a caller. Only the entry, which holds the
// token's hash, goes into the service's configuration.
func printAPIKey(args []string, w io.Writer) error {
	if len(args) != 2 {
		return fmt.Errorf("usage: outbound apikey NAME SCOPE (SCOPE: send, admin, send@TENANT or admin@TENANT)")
	}
	token, key, err := apikey.Generate(args[0], apikey.Scope(args[1]))
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "token (give it to the caller; it is not shown again): %s\nOUTBOUND_API_KEYS entry: %s\n", token, key.Entry())
	return err
}

func printSecretKey(w io.Writer) error {
	_, err := fmt.Fprintln(w, seal.NewKey())
	return err
}
