//! The codec every Interlock service and client is generated with: prost's
//! wire format, with one difference that matters to callers. A message that
//! does not decode is the sender's mistake, so it is answered
//! `INVALID_ARGUMENT`; `INTERNAL` stays for the service's own faults.

use prost::Message;
use std::marker::PhantomData;
use tonic::codec::{BufferSettings, Codec, DecodeBuf, Decoder};
use tonic::Status;
use tonic_prost::ProstEncoder;

/// Encodes `T` and decodes `U` as protobuf.
#[derive(Debug, Clone)]
pub struct InterlockCodec<T, U> {
    types: PhantomData<(T, U)>,
}

impl<T, U> Default for InterlockCodec<T, U> {
    fn default() -> Self {
        InterlockCodec { types: PhantomData }
    }
}

impl<T, U> Codec for InterlockCodec<T, U>
where
    T: Message + Send + 'static,
    U: Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = CallerDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        ProstEncoder::new(BufferSettings::default())
    }

    fn decoder(&mut self) -> Self::Decoder {
        CallerDecoder { types: PhantomData }
    }
}

/// Decodes `U`, answering bytes that are not a `U` with `INVALID_ARGUMENT`.
#[derive(Debug)]
pub struct CallerDecoder<U> {
    types: PhantomData<U>,
}

impl<U: Message + Default> Decoder for CallerDecoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        U::decode(buf).map(Some).map_err(|error| {
            Status::invalid_argument(format!(
                "the message does not decode as {}: {error}",
                std::any::type_name::<U>().rsplit("::").next().unwrap_or("a protobuf message")
            ))
        })
    }
}
