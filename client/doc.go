// Package client is a Go client for Outbound's HTTP API, generated from
// the module's openapi.yaml by oapi-codegen (client.gen.go; do not edit
// it, run go generate in this folder instead). A contract test fails
// when the file and the document drift apart.
//
// Each operation of the document is a method named by its operationId:
// SendMessage, SendBatch, GetMessage, CancelMessage, PutTenantSMTP,
// VerifyTenantSMTP, PutSuppression, PutWebhook and so on. On
// ClientWithResponses the ...WithResponse methods decode the answer:
// JSON200, JSON201, JSON202 for successes and ApplicationProblemJSON4xx
// (a *Problem, with its stable Code) for refusals, plus the headers each
// status declares (X-Request-Id, ETag, RateLimit-*). Every ...Params
// argument may be nil.
//
// Webhook receivers decode the POSTed body into WebhookEvent after
// checking its Outbound-Signature header (webhook.Verify in the module
// does that).
//
// Sending a message and reading its status:
//
//	auth := func(_ context.Context, r *http.Request) error {
//		r.Header.Set("Authorization", "Bearer "+token)
//		return nil
//	}
//	c, err := client.NewClientWithResponses("https://outbound.internal",
//		client.WithRequestEditorFn(auth))
//	if err != nil {
//		return err
//	}
//	res, err := c.SendMessageWithResponse(ctx, nil, client.MessageRequest{
//		TenantID: "acme",
//		To:       []client.Address{{Email: "client@example.com"}},
//		Subject:  "Invoice 42",
//		Text:     "Your invoice is attached.",
//	})
//	switch {
//	case err != nil:
//		return err
//	case res.JSON202 != nil:
//		fmt.Println("queued", res.JSON202.ID) // then GetMessageWithResponse(ctx, id, nil)
//	case res.ApplicationProblemJSON422 != nil:
//		fmt.Println("refused", res.ApplicationProblemJSON422.Code) // and .Errors[i].Field
//	}
//
// Example_sendMessage in example_test.go is the same, compiled.
package client

//go:generate go tool oapi-codegen -config oapi-codegen.yaml ../openapi.yaml
