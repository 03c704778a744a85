//! Actions that tell people outside the tenant what a run did.

pub mod webhook;
