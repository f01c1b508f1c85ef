# Build a static binary, then ship it alone on a minimal base as a non-root
# user. Orchestrators probe /healthz and /readyz; no HEALTHCHECK needed.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/outbound ./cmd/outbound

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/outbound /usr/local/bin/outbound
USER nonroot:nonroot
EXPOSE 8080
# SMTP submission, when OUTBOUND_SUBMISSION(S)_LISTEN are set to these (deploy/).
EXPOSE 1587 1465
ENTRYPOINT ["/usr/local/bin/outbound"]
CMD ["serve"]
