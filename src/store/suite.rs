//! A conformance suite for [`SessionStore`](super::SessionStore) implementations.
