//! Applying edits to an existing team: its names, description and invite settings, joining by
//! the invite link's secret, and team admins. Kept apart from `apply.rs` so each domain's rules
//! read in one place.

use crate::apply::{add_team_member, load_team, load_user, refuse, Step};
use crate::cf::Cf;
use crate::error::{CommandError, Result};
use crate::id::Id;
use crate::keys::{id2, id_key};
use crate::model::{Team, TeamMember};
use crate::outcome::Outcome;
use crate::read::Reader;
use crate::txn::Txn;
use crate::validate;
use serde::{Deserialize, Serialize};

/// Longest description (Mattermost's `TEAM_DESCRIPTION_MAX_RUNES`).
pub const MAX_DESCRIPTION_CHARS: usize = 255;
/// Longest company name (Mattermost's `TEAM_COMPANY_NAME_MAX_LENGTH`).
pub const MAX_COMPANY_NAME_CHARS: usize = 64;
/// Longest list of allowed domains.
pub const MAX_ALLOWED_DOMAINS_CHARS: usize = 1000;
/// Invite secrets are Mattermost ids: 26 characters of base32.
const INVITE_ID_CHARS: usize = 26;

/// The fields a team patch may change; `None` keeps the current value. The team's URL name and
/// type do not change here (Mattermost's patch leaves them too).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TeamPatch {
    pub display_name: Option<String>,
    pub description: Option<String>,
    pub company_name: Option<String>,
    pub allowed_domains: Option<String>,
    pub allow_open_invite: Option<bool>,
    /// A new invite secret (made by the node); the old link stops working.
    pub invite_id: Option<String>,
}

/// Applies `PatchTeam`.
pub(crate) fn patch(txn: &mut Txn, team_id: Id, at: u64, patch: &TeamPatch) -> Step<Outcome> {
    let mut team = load_live_team(txn, team_id)?;
    if let Some(display_name) = &patch.display_name {
        validate::display_name(display_name)?;
        team.display_name = display_name.clone();
    }
    if let Some(description) = &patch.description {
        validate::text("description", description, MAX_DESCRIPTION_CHARS)?;
        team.description = description.clone();
    }
    if let Some(company_name) = &patch.company_name {
        validate::text("company_name", company_name, MAX_COMPANY_NAME_CHARS)?;
        team.company_name = company_name.clone();
    }
    if let Some(domains) = &patch.allowed_domains {
        validate::text("allowed_domains", domains, MAX_ALLOWED_DOMAINS_CHARS)?;
        team.allowed_domains = domains.clone();
    }
    if let Some(open) = patch.allow_open_invite {
        team.allow_open_invite = Some(open);
    }
    if let Some(invite_id) = &patch.invite_id {
        if invite_id.len() != INVITE_ID_CHARS
            || !invite_id.bytes().all(|b| b.is_ascii_alphanumeric())
        {
            return refuse(CommandError::Invalid("malformed invite id".into()));
        }
        team.invite_id = invite_id.clone();
    }
    team.update_at = team.update_at.max(at);
    txn.put(Cf::TeamidTeam, id_key(team.id), &team)?;
    Ok(Outcome::TeamUpdated(team))
}

/// Applies `JoinTeamByInvite`: the team is found by its secret as of this point in the log.
pub(crate) fn join_by_invite(
    txn: &mut Txn,
    invite_id: &str,
    user_id: Id,
    at: u64,
) -> Step<Outcome> {
    if invite_id.is_empty() {
        return refuse(CommandError::not_found("team with invite id", invite_id));
    }
    let user = load_user(txn, user_id)?;
    if user.delete_at != 0 {
        return refuse(CommandError::Deleted(format!("user {user_id}")));
    }
    let mut found = None;
    for (_, value) in txn.scan_prefix(Cf::TeamidTeam, &[])? {
        let team: Team = rmp_serde::from_slice(&value)?;
        if team.invite_id == invite_id && team.delete_at == 0 {
            found = Some(team);
            break;
        }
    }
    let Some(team) = found else {
        return refuse(CommandError::not_found("team with invite id", invite_id));
    };
    if !domain_allowed(&team.allowed_domains, &user.email) {
        return refuse(CommandError::Forbidden(format!(
            "the email domain of user {user_id} may not join team {}",
            team.id
        )));
    }
    add_team_member(txn, &team, user_id, at)
}

/// Whether `email` is in one of `allowed` (comma- or space-separated domains; empty allows all).
pub fn domain_allowed(allowed: &str, email: &str) -> bool {
    let domains: Vec<&str> = allowed
        .split([',', ' '])
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .collect();
    if domains.is_empty() {
        return true;
    }
    let Some((_, domain)) = email.rsplit_once('@') else {
        return false;
    };
    domains.iter().any(|d| d.eq_ignore_ascii_case(domain))
}

/// Applies `SetTeamMemberAdmin`.
pub(crate) fn set_member_admin(
    txn: &mut Txn,
    team_id: Id,
    user_id: Id,
    admin: bool,
) -> Step<Outcome> {
    load_live_team(txn, team_id)?;
    let key = id2(team_id, user_id);
    let Some(mut member) = txn.get::<TeamMember>(Cf::TeamidUseridMember, &key)? else {
        return refuse(CommandError::NotMember {
            user: user_id.to_string(),
            of: format!("team {team_id}"),
        });
    };
    member.roles = with_role(&member.roles, "team_admin", admin);
    txn.put(Cf::TeamidUseridMember, key, &member)?;
    Ok(Outcome::TeamMemberUpdated(member))
}

/// `roles` (space-separated) with `role` present or absent.
pub(crate) fn with_role(roles: &str, role: &str, present: bool) -> String {
    let mut list: Vec<&str> = roles.split_whitespace().filter(|r| *r != role).collect();
    if present {
        list.push(role);
    }
    list.join(" ")
}

fn load_live_team(txn: &mut Txn, team_id: Id) -> Step<Team> {
    let team = load_team(txn, team_id)?;
    if team.delete_at != 0 {
        return refuse(CommandError::Deleted(format!("team {team_id}")));
    }
    Ok(team)
}

impl Reader<'_> {
    /// The live team whose invite secret is `invite_id` (a scan of the teams: an installation
    /// has tens to thousands, and this is read only when someone opens an invite link).
    pub fn team_by_invite(&self, invite_id: &str) -> Result<Option<Team>> {
        if invite_id.is_empty() {
            return Ok(None);
        }
        let mut found = None;
        let mut failure = None;
        self.scan_prefix(
            Cf::TeamidTeam,
            &[],
            false,
            |_, value| match rmp_serde::from_slice::<Team>(value) {
                Ok(team) if team.invite_id == invite_id && team.delete_at == 0 => {
                    found = Some(team);
                    false
                }
                Ok(_) => true,
                Err(e) => {
                    failure = Some(e.into());
                    false
                }
            },
        )?;
        match failure {
            Some(e) => Err(e),
            None => Ok(found),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_are_matched_whole_and_case_blind() {
        assert!(domain_allowed("", "a@b.com"));
        assert!(domain_allowed("b.com, c.org", "a@B.com"));
        assert!(domain_allowed("b.com c.org", "a@c.org"));
        assert!(!domain_allowed("b.com", "a@evil-b.com"));
        assert!(!domain_allowed("b.com", "not-an-email"));
    }

    #[test]
    fn roles_gain_and_lose_one_role() {
        assert_eq!(
            with_role("team_user", "team_admin", true),
            "team_user team_admin"
        );
        assert_eq!(
            with_role("team_user team_admin", "team_admin", false),
            "team_user"
        );
        assert_eq!(
            with_role("team_user team_admin", "team_admin", true),
            "team_user team_admin"
        );
    }
}
