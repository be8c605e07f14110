//! What `RaftNode::status` reports.

/// A member's place in the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Voter,
    Learner,
}

/// One member as the reporting node sees it, plus what the member said about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberStatus {
    pub id: u64,
    pub addr: String,
    pub role: Role,
    /// Whether the member answered the status call (always true for the reporting node).
    pub reachable: bool,
    /// `Leader`, `Follower`, `Candidate` or `Learner`, as the member reports.
    pub state: Option<String>,
    pub term: Option<u64>,
    pub last_log_index: Option<u64>,
    pub applied_index: Option<u64>,
    /// Last log index covered by the member's current snapshot.
    pub snapshot_index: Option<u64>,
    /// Last log index purged from the member's log.
    pub purged_index: Option<u64>,
    /// The leader's record of the member's replicated log (only when reported by the leader).
    pub matched_index: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterStatus {
    /// The node that produced this report.
    pub node_id: u64,
    pub leader: Option<u64>,
    pub term: u64,
    /// Log index of the membership configuration in effect.
    pub membership_index: Option<u64>,
    pub members: Vec<MemberStatus>,
}

impl ClusterStatus {
    pub fn voters(&self) -> Vec<u64> {
        self.members
            .iter()
            .filter(|m| m.role == Role::Voter)
            .map(|m| m.id)
            .collect()
    }

    pub fn learners(&self) -> Vec<u64> {
        self.members
            .iter()
            .filter(|m| m.role == Role::Learner)
            .map(|m| m.id)
            .collect()
    }
}
