//! Transactions: what a prepared write does to the tree, fully resolved.
//!
//! A txn carries everything `apply` needs (the final sequential name, the
//! parent's new cversion, the ephemeral owner), so applying it is a pure
//! function of the tree and the txn — the same on replay as live.
//!
//! On-disk / on-wire form (jute encoding, see `proto::jute`):
//!
//! ```text
//! TxnHeader = long session_id, int cxid, long zxid, long time_ms      (28 bytes)
//! Txn       = int tag, then by tag:
//!   1 CreateSession  int timeout_ms
//!   2 CloseSession   vector<ustring> paths   (the session's ephemerals, fixed at
//!                    prepare time so that replay over a fuzzy snapshot deletes
//!                    exactly them and moves their parents' pzxid: ZOOKEEPER-3145)
//!   3 Create         ustring path, buffer data, vector<ACL> acl,
//!                    long ephemeral_owner, int parent_cversion
//!   4 Delete         ustring path
//!   5 SetData        ustring path, buffer data, int version
//!   6 SetAcl         ustring path, vector<ACL> acl, int aversion
//!   7 Check          ustring path
//!   8 Multi          int count, then count Txns (no nesting)
//!   9 Failed         vector<int> codes   (a write refused in prepare: logged so
//!                    that its reply carries a zxid of its own, as ZooKeeper's
//!                    error txns do; one code, or one per op of a multi)
//!  10 Refused        int code            (a request refused as a whole, a multi
//!                    included: its reply is a plain error, as ZooKeeper's
//!                    single ErrorTxn)
//! ```

use proto::ops::Data;
use proto::{read_records, write_records, Acl, DecodeError, Reader, Writer};

/// Who wrote a txn, when, and its place in history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxnHeader {
    pub session_id: i64,
    pub cxid: i32,
    pub zxid: i64,
    pub time_ms: i64,
}

impl TxnHeader {
    pub const ENCODED_LEN: usize = 28;

    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(Self::ENCODED_LEN);
        self.encode_into(&mut w);
        w.into_inner()
    }

    fn encode_into(&self, w: &mut Writer) {
        w.write_i64(self.session_id);
        w.write_i32(self.cxid);
        w.write_i64(self.zxid);
        w.write_i64(self.time_ms);
    }

    pub fn decode(r: &mut Reader<'_>) -> Result<TxnHeader, DecodeError> {
        Ok(TxnHeader {
            session_id: r.read_i64()?,
            cxid: r.read_i32()?,
            zxid: r.read_i64()?,
            time_ms: r.read_i64()?,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Txn {
    CreateSession {
        timeout_ms: i32,
    },
    CloseSession {
        paths: Vec<String>,
    },
    Create {
        path: String,
        data: Data,
        acl: Vec<Acl>,
        ephemeral_owner: i64,
        parent_cversion: i32,
    },
    Delete {
        path: String,
    },
    SetData {
        path: String,
        data: Data,
        version: i32,
    },
    SetAcl {
        path: String,
        acl: Vec<Acl>,
        version: i32,
    },
    Check {
        path: String,
    },
    Multi(Vec<Txn>),
    /// A refused write: no change, only its zxid and the codes for its reply.
    Failed {
        codes: Vec<i32>,
    },
    /// A request refused as a whole: no change, a plain error reply.
    Refused {
        code: i32,
    },
}

impl Txn {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(self.encoded_len());
        self.encode_into(&mut w);
        w.into_inner()
    }

    fn encode_into(&self, w: &mut Writer) {
        match self {
            Txn::CreateSession { timeout_ms } => {
                w.write_i32(1);
                w.write_i32(*timeout_ms);
            }
            Txn::CloseSession { paths } => {
                w.write_i32(2);
                proto::write_strings(w, paths);
            }
            Txn::Create {
                path,
                data,
                acl,
                ephemeral_owner,
                parent_cversion,
            } => {
                w.write_i32(3);
                w.write_ustring(path);
                w.write_buffer_opt(data.as_deref());
                write_records(w, acl);
                w.write_i64(*ephemeral_owner);
                w.write_i32(*parent_cversion);
            }
            Txn::Delete { path } => {
                w.write_i32(4);
                w.write_ustring(path);
            }
            Txn::SetData {
                path,
                data,
                version,
            } => {
                w.write_i32(5);
                w.write_ustring(path);
                w.write_buffer_opt(data.as_deref());
                w.write_i32(*version);
            }
            Txn::SetAcl { path, acl, version } => {
                w.write_i32(6);
                w.write_ustring(path);
                write_records(w, acl);
                w.write_i32(*version);
            }
            Txn::Check { path } => {
                w.write_i32(7);
                w.write_ustring(path);
            }
            Txn::Failed { codes } => {
                w.write_i32(9);
                w.write_vec(codes, |w, code| w.write_i32(*code));
            }
            Txn::Refused { code } => {
                w.write_i32(10);
                w.write_i32(*code);
            }
            Txn::Multi(txns) => {
                w.write_i32(8);
                w.write_i32(i32::try_from(txns.len()).expect("multi over i32::MAX ops"));
                for txn in txns {
                    assert!(!matches!(txn, Txn::Multi(_)), "multi txns do not nest");
                    txn.encode_into(w);
                }
            }
        }
    }

    /// The length of [`Txn::encode`]'s output, without encoding.
    pub fn encoded_len(&self) -> usize {
        let string = |s: &str| 4 + s.len();
        let acl = |acl: &[Acl]| {
            4 + acl
                .iter()
                .map(|a| 4 + string(&a.id.scheme) + string(&a.id.id))
                .sum::<usize>()
        };
        let data = |d: &Data| 4 + d.as_ref().map_or(0, Vec::len);
        4 + match self {
            Txn::CreateSession { .. } => 4,
            Txn::CloseSession { paths } => 4 + paths.iter().map(|p| string(p)).sum::<usize>(),
            Txn::Create {
                path,
                data: d,
                acl: a,
                ..
            } => string(path) + data(d) + acl(a) + 8 + 4,
            Txn::Delete { path } | Txn::Check { path } => string(path),
            Txn::Failed { codes } => 4 + 4 * codes.len(),
            Txn::Refused { .. } => 4,
            Txn::SetData { path, data: d, .. } => string(path) + data(d) + 4,
            Txn::SetAcl { path, acl: a, .. } => string(path) + acl(a) + 4,
            Txn::Multi(txns) => 4 + txns.iter().map(Txn::encoded_len).sum::<usize>(),
        }
    }

    /// Decodes a whole buffer written by [`Txn::encode`].
    pub fn decode(bytes: &[u8]) -> Result<Txn, DecodeError> {
        let mut r = Reader::new(bytes);
        let txn = Self::decode_from(&mut r, true)?;
        r.finish()?;
        Ok(txn)
    }

    fn decode_from(r: &mut Reader<'_>, top_level: bool) -> Result<Txn, DecodeError> {
        let tag = r.read_i32()?;
        Ok(match tag {
            1 => Txn::CreateSession {
                timeout_ms: r.read_i32()?,
            },
            2 => Txn::CloseSession {
                paths: proto::read_strings(r)?,
            },
            3 => Txn::Create {
                path: r.read_ustring()?,
                data: r.read_buffer_opt()?.map(<[u8]>::to_vec),
                acl: read_records(r)?,
                ephemeral_owner: r.read_i64()?,
                parent_cversion: r.read_i32()?,
            },
            4 => Txn::Delete {
                path: r.read_ustring()?,
            },
            5 => Txn::SetData {
                path: r.read_ustring()?,
                data: r.read_buffer_opt()?.map(<[u8]>::to_vec),
                version: r.read_i32()?,
            },
            6 => Txn::SetAcl {
                path: r.read_ustring()?,
                acl: read_records(r)?,
                version: r.read_i32()?,
            },
            7 => Txn::Check {
                path: r.read_ustring()?,
            },
            9 => Txn::Failed {
                codes: r.read_vec(|r| r.read_i32())?,
            },
            10 => Txn::Refused {
                code: r.read_i32()?,
            },
            8 if top_level => {
                let count = r.read_i32()?;
                if count < 0 || count as usize > r.remaining() {
                    return Err(DecodeError::InvalidValue {
                        field: "multi txn count",
                        value: i64::from(count),
                    });
                }
                let mut txns = Vec::with_capacity(count as usize);
                for _ in 0..count {
                    txns.push(Self::decode_from(r, false)?);
                }
                Txn::Multi(txns)
            }
            _ => {
                return Err(DecodeError::InvalidValue {
                    field: "txn tag",
                    value: i64::from(tag),
                })
            }
        })
    }
}

/// A header and txn in one buffer, as the log stores them.
pub fn encode_record(header: &TxnHeader, txn: &Txn) -> Vec<u8> {
    let mut w = Writer::with_capacity(TxnHeader::ENCODED_LEN + txn.encoded_len());
    header.encode_into(&mut w);
    txn.encode_into(&mut w);
    w.into_inner()
}

/// Splits a log record back into header and txn.
pub fn decode_record(bytes: &[u8]) -> Result<(TxnHeader, Txn), DecodeError> {
    let mut r = Reader::new(bytes);
    let header = TxnHeader::decode(&mut r)?;
    let rest = &bytes[r.offset()..];
    Ok((header, Txn::decode(rest)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_txn_round_trips() {
        let create = Txn::Create {
            path: "/a".into(),
            data: Some(b"x".to_vec()),
            acl: Acl::open_unsafe(),
            ephemeral_owner: 7,
            parent_cversion: 3,
        };
        let txns = vec![
            Txn::CreateSession { timeout_ms: 4000 },
            Txn::CloseSession {
                paths: vec!["/e1".into(), "/a/e2".into()],
            },
            create.clone(),
            Txn::Delete { path: "/a".into() },
            Txn::SetData {
                path: "/a".into(),
                data: None,
                version: 2,
            },
            Txn::SetAcl {
                path: "/a".into(),
                acl: Acl::open_unsafe(),
                version: 1,
            },
            Txn::Check { path: "/a".into() },
            Txn::Multi(vec![create, Txn::Delete { path: "/b".into() }]),
            Txn::Failed {
                codes: vec![0, -101, -2],
            },
            Txn::Refused { code: -5 },
        ];
        let header = TxnHeader {
            session_id: 1,
            cxid: 2,
            zxid: 3,
            time_ms: 4,
        };
        for txn in txns {
            assert_eq!(txn.encoded_len(), txn.encode().len(), "{txn:?}");
            assert_eq!(
                decode_record(&encode_record(&header, &txn)).unwrap(),
                (header, txn)
            );
        }
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(Txn::decode(&[0, 0, 0, 99]).is_err());
        assert!(Txn::decode(&[0, 0, 0, 8, 0x7f, 0, 0, 0]).is_err());
        assert!(Txn::decode(&[]).is_err());
    }
}
