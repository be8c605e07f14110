//! Roles: the permission lists the apps use to decide what to offer (without `create_post` on
//! some role the user holds in a channel, the mobile app's message box is read-only). confab has
//! no permission schemes; its rules are fixed in the handlers. So each built-in role lists
//! exactly the permissions confab grants a holder of that role everywhere the role applies —
//! never one the server would then refuse — and a role confab gives no powers of its own
//! (`channel_admin`) lists none. Apps combine a user's system, team and channel roles, as
//! Mattermost's do.

use super::{ok, parse_body, AppState, Caller};
use crate::error::{ApiError, ApiResult};
use axum::body::Bytes;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use confab_storage::Id;
use serde_json::{json, Value};
use sha1::Digest;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/roles/names", post(roles_by_names))
        .route("/roles/name/{name}", get(role_by_name))
        .route("/roles/{role_id}", get(role_by_id))
}

/// A built-in role and what it grants in confab.
pub struct Role {
    pub name: &'static str,
    pub permissions: &'static [&'static str],
}

/// Every user: create teams and direct/group channels, see and join open teams, list users,
/// add custom emoji and delete their own.
const SYSTEM_USER: &[&str] = &[
    "create_emojis",
    "delete_emojis",
    "create_team",
    "create_direct_channel",
    "create_group_channel",
    "list_public_teams",
    "join_public_teams",
    "view_members",
];

/// The system admin (the first user): everything above, plus what the handlers let an admin do
/// anywhere — other users' data (`edit_other_users`: preferences, read state), every team,
/// others' posts, any team channel's deletion, members of open channels.
const SYSTEM_ADMIN: &[&str] = &[
    "create_emojis",
    "delete_emojis",
    "delete_others_emojis",
    "manage_team",
    "manage_team_roles",
    "manage_channel_roles",
    "convert_public_channel_to_private",
    "convert_private_channel_to_public",
    "create_team",
    "create_direct_channel",
    "create_group_channel",
    "list_public_teams",
    "join_public_teams",
    "view_members",
    "manage_system",
    "edit_other_users",
    "list_private_teams",
    "join_private_teams",
    "add_user_to_team",
    "view_team",
    "list_team_channels",
    "read_public_channel",
    "join_public_channels",
    "create_public_channel",
    "create_private_channel",
    "manage_public_channel_members",
    "edit_others_posts",
    "delete_others_posts",
    "delete_public_channel",
    "delete_private_channel",
];

/// A team member: see the team and its open channels, join and create channels.
const TEAM_USER: &[&str] = &[
    "view_team",
    "list_team_channels",
    "read_public_channel",
    "join_public_channels",
    "create_public_channel",
    "create_private_channel",
];

/// A team's creator (and whom the admins appoint): may also add people to it, invite-only or
/// not, edit it and its invite link, appoint team admins, and run every channel of it.
const TEAM_ADMIN: &[&str] = &[
    "add_user_to_team",
    "manage_team",
    "manage_team_roles",
    "manage_channel_roles",
    "convert_public_channel_to_private",
    "convert_private_channel_to_public",
];

/// A channel's creator (and whom they appoint): appoint channel admins and change the
/// channel's privacy.
const CHANNEL_ADMIN: &[&str] = &[
    "manage_channel_roles",
    "convert_public_channel_to_private",
    "convert_private_channel_to_public",
];

/// A channel member: read and post, react, edit and delete their own posts, mention the
/// channel, add and remove members, edit the channel's name, header and purpose.
const CHANNEL_USER: &[&str] = &[
    "read_channel",
    "read_channel_content",
    "create_post",
    "add_reaction",
    "remove_reaction",
    "edit_post",
    "delete_post",
    "use_channel_mentions",
    "manage_public_channel_members",
    "manage_private_channel_members",
    "manage_public_channel_properties",
    "manage_private_channel_properties",
];

/// Every role confab knows, in the order `roles/names` answers.
pub const ROLES: &[Role] = &[
    Role {
        name: "system_user",
        permissions: SYSTEM_USER,
    },
    Role {
        name: "system_admin",
        permissions: SYSTEM_ADMIN,
    },
    Role {
        name: "team_user",
        permissions: TEAM_USER,
    },
    Role {
        name: "team_admin",
        permissions: TEAM_ADMIN,
    },
    Role {
        name: "channel_user",
        permissions: CHANNEL_USER,
    },
    Role {
        name: "channel_admin",
        permissions: CHANNEL_ADMIN,
    },
];

/// A role's id: derived from its name, so every node and every restart answers the same one.
pub fn role_id(name: &str) -> Id {
    let digest = sha1::Sha1::digest(format!("confab-role:{name}"));
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    Id::from_bytes(bytes)
}

pub fn find(name: &str) -> Option<&'static Role> {
    ROLES.iter().find(|role| role.name == name)
}

/// Mattermost's Role JSON.
fn view(role: &Role) -> Value {
    json!({
        "id": role_id(role.name).to_base32(),
        "name": role.name,
        "display_name": format!("authentication.roles.{}.name", role.name),
        "description": format!("authentication.roles.{}.description", role.name),
        "create_at": 0,
        "update_at": 0,
        "delete_at": 0,
        "permissions": role.permissions,
        "scheme_managed": true,
        "built_in": true,
    })
}

/// Mattermost's rule for role names: 1–64 of lowercase letters, digits and `_`.
fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

fn role_not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "app.role.get_by_name.app_error",
        "Unable to get role.",
    )
}

/// POST /roles/names `["system_user", …]`: the known roles among the names; unknown ones are
/// left out, as Mattermost does. Blank names are skipped; a malformed one is a 400.
async fn roles_by_names(_caller: Caller, body: Bytes) -> ApiResult<Response> {
    let names: Vec<String> = parse_body(&body, "role names")?;
    let mut wanted = Vec::new();
    for name in &names {
        let name = name.trim();
        if name.is_empty() {
            continue;
        }
        if !valid_name(name) {
            return Err(ApiError::invalid_param("rolename"));
        }
        wanted.push(name);
    }
    if wanted.is_empty() {
        return Err(ApiError::invalid_param("rolename"));
    }
    let roles = ROLES
        .iter()
        .filter(|role| wanted.contains(&role.name))
        .map(view)
        .collect();
    Ok(ok(Value::Array(roles)))
}

async fn role_by_name(_caller: Caller, Path(name): Path<String>) -> ApiResult<Response> {
    if !valid_name(&name) {
        return Err(ApiError::invalid_param("role_name"));
    }
    find(&name)
        .map(|role| ok(view(role)))
        .ok_or_else(role_not_found)
}

async fn role_by_id(_caller: Caller, Path(text): Path<String>) -> ApiResult<Response> {
    let id = super::path_id(&text, "role_id")?;
    ROLES
        .iter()
        .find(|role| role_id(role.name) == id)
        .map(|role| ok(view(role)))
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "app.role.get.app_error",
                "Unable to get role.",
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_and_distinct() {
        let ids: std::collections::BTreeSet<Id> = ROLES.iter().map(|r| role_id(r.name)).collect();
        assert_eq!(ids.len(), ROLES.len());
        assert_eq!(role_id("system_user"), role_id("system_user"));
        assert_eq!(role_id("system_user").to_base32().len(), 26);
    }

    #[test]
    fn the_admin_can_do_whatever_a_user_can() {
        for permission in SYSTEM_USER {
            assert!(SYSTEM_ADMIN.contains(permission), "{permission}");
        }
    }
}
