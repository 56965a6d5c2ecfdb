//! ZooKeeper's numeric vocabulary: opcodes, error codes, create modes, event
//! types, keeper states, permissions and watcher types (ZooDefs, KeeperException.Code,
//! Watcher.Event).

use crate::jute::DecodeError;

macro_rules! int_enum {
    ($(#[$m:meta])* $name:ident : $field:literal { $($variant:ident = $value:expr),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn code(self) -> i32 {
                match self { $($name::$variant => $value),+ }
            }

            pub fn from_code(code: i32) -> Option<Self> {
                match code { $(v if v == $value => Some($name::$variant),)+ _ => None }
            }

            /// Like [`Self::from_code`], as a decode error naming the field.
            pub fn decode(code: i32) -> Result<Self, DecodeError> {
                Self::from_code(code).ok_or(DecodeError::InvalidValue { field: $field, value: i64::from(code) })
            }
        }
    };
}

int_enum! {
    /// Request types (ZooDefs.OpCode).
    OpCode: "opcode" {
        Notification = 0, Create = 1, Delete = 2, Exists = 3, GetData = 4, SetData = 5,
        GetAcl = 6, SetAcl = 7, GetChildren = 8, Sync = 9, Ping = 11, GetChildren2 = 12,
        Check = 13, Multi = 14, Create2 = 15, Reconfig = 16, CheckWatches = 17,
        RemoveWatches = 18, CreateContainer = 19, DeleteContainer = 20, CreateTtl = 21,
        MultiRead = 22, Auth = 100, SetWatches = 101, Sasl = 102, GetEphemerals = 103,
        GetAllChildrenNumber = 104, SetWatches2 = 105, AddWatch = 106, WhoAmI = 107,
        CreateSession = -10, CloseSession = -11, Error = -1,
    }
}

impl OpCode {
    /// Whether the request changes the tree and so goes through the log.
    pub fn is_write(self) -> bool {
        matches!(
            self,
            OpCode::Create
                | OpCode::Create2
                | OpCode::CreateContainer
                | OpCode::CreateTtl
                | OpCode::Delete
                | OpCode::DeleteContainer
                | OpCode::SetData
                | OpCode::SetAcl
                | OpCode::Check
                | OpCode::Multi
                | OpCode::Reconfig
                | OpCode::CreateSession
                | OpCode::CloseSession
        )
    }
}

int_enum! {
    /// KeeperException.Code. `Ok` is 0; everything else is an error reply.
    ErrorCode: "error code" {
        Ok = 0, SystemError = -1, RuntimeInconsistency = -2, DataInconsistency = -3,
        ConnectionLoss = -4, MarshallingError = -5, Unimplemented = -6,
        OperationTimeout = -7, BadArguments = -8, UnknownSession = -12,
        NewConfigNoQuorum = -13, ReconfigInProgress = -14, ApiError = -100, NoNode = -101,
        NoAuth = -102, BadVersion = -103, NoChildrenForEphemerals = -108, NodeExists = -110,
        NotEmpty = -111, SessionExpired = -112, InvalidCallback = -113, InvalidAcl = -114,
        AuthFailed = -115, SessionMoved = -118, NotReadOnly = -119,
        EphemeralOnLocalSession = -120, NoWatcher = -121, RequestTimeout = -122,
        ReconfigDisabled = -123, SessionClosedRequireSaslAuth = -124, QuotaExceeded = -125,
        ThrottledOp = -127,
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?} ({})", self, self.code())
    }
}

impl std::error::Error for ErrorCode {}

int_enum! {
    /// CreateMode, as sent in create requests' flags.
    CreateMode: "create mode" {
        Persistent = 0, Ephemeral = 1, PersistentSequential = 2, EphemeralSequential = 3,
        Container = 4, PersistentWithTtl = 5, PersistentSequentialWithTtl = 6,
    }
}

impl CreateMode {
    pub fn is_sequential(self) -> bool {
        matches!(
            self,
            CreateMode::PersistentSequential
                | CreateMode::EphemeralSequential
                | CreateMode::PersistentSequentialWithTtl
        )
    }

    pub fn is_ephemeral(self) -> bool {
        matches!(
            self,
            CreateMode::Ephemeral | CreateMode::EphemeralSequential
        )
    }

    pub fn is_ttl(self) -> bool {
        matches!(
            self,
            CreateMode::PersistentWithTtl | CreateMode::PersistentSequentialWithTtl
        )
    }

    pub fn is_container(self) -> bool {
        self == CreateMode::Container
    }
}

int_enum! {
    /// Watcher.Event.EventType.
    EventType: "event type" {
        None = -1, NodeCreated = 1, NodeDeleted = 2, NodeDataChanged = 3,
        NodeChildrenChanged = 4, DataWatchRemoved = 5, ChildWatchRemoved = 6,
        PersistentWatchRemoved = 7,
    }
}

int_enum! {
    /// Watcher.Event.KeeperState.
    KeeperState: "keeper state" {
        Disconnected = 0, SyncConnected = 3, AuthFailed = 4, ConnectedReadOnly = 5,
        SaslAuthenticated = 6, Closed = 7, Expired = -112,
    }
}

int_enum! {
    /// Watcher.WatcherType, used by checkWatches and removeWatches.
    WatcherType: "watcher type" {
        Children = 1, Data = 2, Any = 3, Persistent = 4, PersistentRecursive = 5,
    }
}

int_enum! {
    /// AddWatchMode.
    AddWatchMode: "add watch mode" {
        Persistent = 0, PersistentRecursive = 1,
    }
}

/// ZooDefs.Perms bits.
pub mod perms {
    pub const READ: i32 = 1;
    pub const WRITE: i32 = 2;
    pub const CREATE: i32 = 4;
    pub const DELETE: i32 = 8;
    pub const ADMIN: i32 = 16;
    pub const ALL: i32 = READ | WRITE | CREATE | DELETE | ADMIN;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_round_trips() {
        for op in OpCode::ALL {
            assert_eq!(OpCode::from_code(op.code()), Some(*op));
        }
        for e in ErrorCode::ALL {
            assert_eq!(ErrorCode::from_code(e.code()), Some(*e));
        }
        assert_eq!(OpCode::from_code(10), None);
        assert!(ErrorCode::decode(-9999).is_err());
    }
}
