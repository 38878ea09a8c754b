"""HTTP routers of the sandbox core, one per resource."""
