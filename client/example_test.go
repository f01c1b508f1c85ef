package client_test

import (
	"context"
	"fmt"
	"net/http"

	"github.com/outbound-mail/outbound/client"
)

// A backend queues a message for its tenant acme and reads its status.
func Example_sendMessage() {
	ctx := context.Background()
	token := "the send token" // from outbound apikey billing send
	auth := func(_ context.Context, r *http.Request) error {
		r.Header.Set("Authorization", "Bearer "+token)
		return nil
	}
	c, err := client.NewClientWithResponses("http://127.0.0.1:8080", client.WithRequestEditorFn(auth))
	if err != nil {
		fmt.Println(err)
		return
	}
	res, err := c.SendMessageWithResponse(ctx, &client.SendMessageParams{IdempotencyKey: new("invoice-42")},
		client.MessageRequest{
			TenantID: "acme",
			To:       []client.Address{{Email: "client@example.com", Name: "Client"}},
			Subject:  "Invoice 42",
			Text:     "Your invoice is attached.",
		})
	switch {
	case err != nil:
		fmt.Println(err)
	case res.JSON202 != nil:
		st, err := c.GetMessageWithResponse(ctx, res.JSON202.ID, nil)
		if err == nil && st.JSON200 != nil {
			fmt.Println(st.JSON200.Status == client.StatusSent)
		}
	case res.ApplicationProblemJSON422 != nil:
		for _, e := range res.ApplicationProblemJSON422.Errors {
			fmt.Println(e.Field, e.Code)
		}
	}
}
