package publish_test

import (
	"testing"

	"github.com/oshirase/oshirase/loadtest/publish"
	"github.com/oshirase/oshirase/wire"
)

func TestWireCodecCompany(t *testing.T) {
	c := publish.WireCodec{Tenant: "default"}
	got, err := c.Channel(publish.Company)
	want, _ := wire.NewChannel("default", wire.ScopeCompany, "")
	if err != nil || got != string(want) {
		t.Fatalf("Channel(Company) = %q, %v; want %q", got, err, want)
	}
	if err := wire.ValidateName("user", publish.Company, 0); err == nil {
		t.Fatal("Company is a valid user name: it could collide with a real user")
	}
}
