//! The rooms service on `/ws`: publish/subscribe with presence.
//!
//! - [`hub`]: the registry of rooms and the fan-out (serialise once, share
//!   the bytes);
//! - [`outbox`]: each client's direct path to its socket, its bounded
//!   queue, and the slow-client policy;
//! - [`client`]: one connection's side of the protocol (`duplex-protocol`).
//!
//! The connection code (`crate::connection`) owns the socket and shares it
//! with the [`Outbox`] (`crate::wire::SharedWriter`): it hands data
//! messages to [`Client::handle`] and writes out what the outbox queued.

mod client;
mod hub;
mod outbox;

pub(crate) use client::{Abusive, Client, Limits};
pub(crate) use hub::{Hub, frame};
pub(crate) use outbox::Outbox;
