"""The ATH implementer engine, shared by native services and the gateway."""
