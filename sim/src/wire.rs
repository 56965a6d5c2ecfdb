//! The client protocol's frames as the simulated ends read them: splitting
//! a message into length-prefixed frames, decoding requests as the
//! engine's connection does (`engine/src/connection.rs`), and decoding
//! replies into the model's terms.

use node::RequestFrame;
use proto::ops::{MultiResult, Request, Response};
use proto::{ErrorCode, OpCode, Reader, Record, RequestHeader};

use crate::model::{NodeStat, Op, Outcome, SubResult};
use crate::workload;

/// The frames of a message (length-prefixed), as slices; stops at a cut frame.
pub fn frame_slices(bytes: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = bytes;
    std::iter::from_fn(move || {
        if rest.len() < 4 {
            return None;
        }
        let length = i32::from_be_bytes(rest[..4].try_into().expect("4 bytes")) as usize;
        if rest.len() < 4 + length {
            return None;
        }
        let frame = &rest[4..4 + length];
        rest = &rest[4 + length..];
        Some(frame)
    })
}

pub fn first_frame(bytes: &[u8]) -> Option<&[u8]> {
    frame_slices(bytes).next()
}

/// Decodes request frames as the engine's connection does: a header, then
/// the body for its opcode (an unknown opcode or a bad body is still a
/// request, answered in order); a bad header ends the connection.
pub fn decode_requests(bytes: &[u8]) -> Result<Vec<RequestFrame>, proto::DecodeError> {
    let mut requests = Vec::new();
    for frame in frame_slices(bytes) {
        let mut reader = Reader::new(frame);
        let header = RequestHeader::decode(&mut reader)?;
        let (body, nulls) = match OpCode::from_code(header.op) {
            Some(op) => match Request::decode_with_nulls(op, &mut reader) {
                Ok((request, nulls)) => (Ok(request), nulls),
                Err(err) => (Err(err), proto::Nulls::default()),
            },
            None => (
                Err(proto::DecodeError::UnknownOpCode(header.op)),
                proto::Nulls::default(),
            ),
        };
        requests.push(RequestFrame {
            xid: header.xid,
            op: header.op,
            body,
            nulls,
        });
    }
    Ok(requests)
}

/// Splits bytes into length-prefixed frames.
pub fn split_frames(mut bytes: &[u8]) -> Result<Vec<&[u8]>, String> {
    let mut frames = Vec::new();
    while !bytes.is_empty() {
        if bytes.len() < 4 {
            return Err(format!("{} stray bytes after the last frame", bytes.len()));
        }
        let length = i32::from_be_bytes(bytes[..4].try_into().expect("4 bytes"));
        let length = usize::try_from(length).map_err(|_| format!("frame length {length}"))?;
        if bytes.len() < 4 + length {
            return Err(format!("frame of {length} bytes cut short"));
        }
        frames.push(&bytes[4..4 + length]);
        bytes = &bytes[4 + length..];
    }
    Ok(frames)
}

fn node_stat(stat: &proto::Stat) -> NodeStat {
    NodeStat {
        version: stat.version,
        ephemeral_owner: stat.ephemeral_owner,
        num_children: stat.num_children,
        data_length: stat.data_length,
    }
}

/// What a reply says, in the model's terms.
pub fn decode_outcome(op: &Op, err: i32, body: &[u8]) -> Result<Outcome, String> {
    let code = ErrorCode::from_code(err).ok_or_else(|| format!("unknown error code {err}"))?;
    if code != ErrorCode::Ok {
        return Ok(Outcome::Error(code));
    }
    let opcode = workload::request(op).op_code();
    let response = Response::decode(opcode, &mut Reader::new(body)).map_err(|e| e.to_string())?;
    Ok(match (op, response) {
        (Op::Create { .. }, Response::Create(r)) => Outcome::Created { path: r.path },
        (Op::Delete { .. }, _) => Outcome::Deleted,
        (Op::SetData { .. }, Response::SetData(r)) => Outcome::DataSet {
            version: r.stat.version,
        },
        (Op::Multi(_), Response::Multi(results)) => multi_outcome(results)?,
        (Op::GetData { .. }, Response::GetData(r)) => Outcome::Data {
            data: r.data.unwrap_or_default(),
            stat: node_stat(&r.stat),
        },
        (Op::Exists { .. }, Response::Exists(r)) => Outcome::Stat(node_stat(&r.stat)),
        (Op::GetChildren { .. }, Response::GetChildren(r)) => {
            let mut children = r.children;
            children.sort();
            Outcome::Children(children)
        }
        (Op::Sync | Op::CloseSession | Op::AddWatch { .. }, _) => Outcome::Done,
        (op, response) => return Err(format!("{response:?} answers {}", op.describe())),
    })
}

fn multi_outcome(results: Vec<MultiResult>) -> Result<Outcome, String> {
    if results.iter().any(|r| matches!(r, MultiResult::Error(_))) {
        let codes = results
            .iter()
            .map(|r| match r {
                MultiResult::Error(code) => Ok(*code),
                other => Err(format!("a failed multi holds a result {other:?}")),
            })
            .collect::<Result<Vec<i32>, String>>()?;
        return Ok(Outcome::MultiFailed(codes));
    }
    let results = results
        .into_iter()
        .map(|r| match r {
            MultiResult::Create { path } | MultiResult::Create2 { path, .. } => {
                Ok(SubResult::Created(path))
            }
            MultiResult::Delete => Ok(SubResult::Deleted),
            MultiResult::SetData { stat } => Ok(SubResult::DataSet {
                version: stat.version,
            }),
            MultiResult::Check => Ok(SubResult::Checked),
            other => Err(format!("unexpected multi result {other:?}")),
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok(Outcome::Multi(results))
}
