package client

import (
	contentapi "github.com/berth-containers/berth/api/services/content/v1"
	"github.com/berth-containers/berth/content"
)

// ContentAPIService is the raw Content service client.
func (c *Client) ContentAPIService() contentapi.ContentClient {
	return contentapi.NewContentClient(c.conn)
}

// ContentStore is the daemon's content store, namespaced by each call's
// context.
func (c *Client) ContentStore() content.Store {
	return NewRemoteContentStore(c.ContentAPIService())
}
