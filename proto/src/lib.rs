//! Generated bindings for the Terraform plugin protocol 6.10 (`tfplugin6`) and go-plugin's
//! controller, stdio and broker services (`plugin`).
//!
//! The `.proto` sources under `proto/` were written for this project from the published
//! protocol; only the field numbers and names have to match Terraform's.

#![allow(clippy::all, clippy::pedantic, missing_docs)]

/// Terraform plugin protocol 6 (`tfplugin6`), newest released minor version 6.10.
pub mod tfplugin6 {
    tonic::include_proto!("tfplugin6");
}

/// go-plugin's own services: `GRPCController`, `GRPCStdio`, `GRPCBroker`.
pub mod plugin {
    tonic::include_proto!("plugin");
}

/// The minor version of protocol 6 these bindings implement.
pub const PROTOCOL_MINOR_VERSION: u32 = 10;
