//! The `interlock.v1` protobuf messages and gRPC services.
//!
//! *Architecture invariant:* only this crate and the service crates that serve
//! it know protobuf; everything else speaks the core's types.

#![allow(clippy::all, missing_docs, unreachable_pub)]

pub mod codec;

pub mod v1 {
    tonic::include_proto!("interlock.v1");
}

/// The encoded `FileDescriptorSet` of every Interlock service, for reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/interlock_descriptor.bin"));
