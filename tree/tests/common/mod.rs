//! A small driver for the tree: prepares and applies writes the way the
//! server does, with a logical clock, and keeps every txn it applied so a
//! test can replay them.

#![allow(dead_code)]

use proto::{Acl, CreateMode, Id};
use tree::{Caller, DataTree, PrepareError, Txn, TxnHeader, TxnResult, WriteOp};

pub struct Driver {
    pub tree: DataTree,
    pub zxid: i64,
    pub time_ms: i64,
    /// Every txn applied, in order.
    pub log: Vec<(TxnHeader, Txn)>,
}

impl Default for Driver {
    fn default() -> Self {
        Self::new()
    }
}

impl Driver {
    pub fn new() -> Driver {
        let mut tree = DataTree::new();
        tree.set_extended_types_enabled(true);
        Driver {
            tree,
            zxid: 0,
            time_ms: 1_000,
            log: Vec::new(),
        }
    }

    /// Prepares a write without applying it (pipelining).
    pub fn prepare(
        &mut self,
        session_id: i64,
        op: &WriteOp,
    ) -> Result<(TxnHeader, Txn), PrepareError> {
        self.prepare_as(session_id, &[], op)
    }

    pub fn prepare_as(
        &mut self,
        session_id: i64,
        auth: &[Id],
        op: &WriteOp,
    ) -> Result<(TxnHeader, Txn), PrepareError> {
        let caller = Caller { session_id, auth };
        let zxid = self.zxid + 1;
        let txn = self.tree.prepare(&caller, op, zxid)?;
        self.zxid = zxid;
        self.time_ms += 1;
        let header = TxnHeader {
            session_id,
            cxid: 0,
            zxid,
            time_ms: self.time_ms,
        };
        Ok((header, txn))
    }

    pub fn apply(&mut self, header: TxnHeader, txn: Txn) -> TxnResult {
        let applied = self.tree.apply(&header, &txn);
        self.log.push((header, txn));
        applied.result.expect("a prepared txn applies cleanly")
    }

    /// Prepares and applies at once.
    pub fn write(&mut self, session_id: i64, op: WriteOp) -> Result<TxnResult, PrepareError> {
        self.write_as(session_id, &[], op)
    }

    pub fn write_as(
        &mut self,
        session_id: i64,
        auth: &[Id],
        op: WriteOp,
    ) -> Result<TxnResult, PrepareError> {
        let (header, txn) = self.prepare_as(session_id, auth, &op)?;
        Ok(self.apply(header, txn))
    }
}

pub fn create(path: &str, mode: CreateMode) -> WriteOp {
    WriteOp::Create {
        path: path.into(),
        data: Some(path.as_bytes().to_vec()),
        acl: Acl::open_unsafe(),
        mode,
        ttl_ms: -1,
    }
}

pub fn persistent(path: &str) -> WriteOp {
    create(path, CreateMode::Persistent)
}

pub fn delete(path: &str, version: i32) -> WriteOp {
    WriteOp::Delete {
        path: path.into(),
        version,
    }
}

pub fn set_data(path: &str, data: &[u8], version: i32) -> WriteOp {
    WriteOp::SetData {
        path: path.into(),
        data: Some(data.to_vec()),
        version,
    }
}
