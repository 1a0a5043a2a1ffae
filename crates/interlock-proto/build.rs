//! Compiles the .proto files with protox (a protobuf compiler in Rust, so no
//! system protoc is needed) and generates the tonic services. The encoded file
//! descriptor set is kept for the gRPC reflection service.

use prost::Message as _;
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = [
        "proto/interlock/v1/ledger.proto",
        "proto/interlock/v1/notary.proto",
        "proto/interlock/v1/gateway.proto",
        "proto/interlock/v1/agent.proto",
        "proto/interlock/v1/observer.proto",
    ];
    for proto in protos {
        println!("cargo:rerun-if-changed={proto}");
    }
    let descriptors = protox::compile(protos, ["proto"])?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out_dir.join("interlock_descriptor.bin"), descriptors.encode_to_vec())?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .codec_path("crate::codec::InterlockCodec")
        .compile_fds(descriptors)?;
    Ok(())
}
