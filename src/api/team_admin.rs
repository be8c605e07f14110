//! Running a team: editing it (`PUT /teams/{id}`, `/patch`), its invite link (regenerating the
//! secret, reading the team behind a link, joining by it), and making members team admins.
//! Team and system admins run a team, as Mattermost's `manage_team` and `manage_team_roles`
//! grant by default.

use super::{created, ok, parse_body, path_id, status_ok, with_applied, AppState, Caller, Params};
use crate::clock::now_ms;
use crate::error::{ApiError, ApiResult};
use crate::views;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use axum::routing::{get, post, put};
use axum::Router;
use confab_storage::teams::TeamPatch;
use confab_storage::{Command, Id, Outcome, Reader};
use serde::Deserialize;
use serde_json::json;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/teams/{team_id}/patch", put(patch_team))
        .route(
            "/teams/{team_id}/regenerate_invite_id",
            post(regenerate_invite_id),
        )
        .route("/teams/invite/{invite_id}", get(invite_info))
        .route("/teams/members/invite", post(join_by_invite))
        .route(
            "/teams/{team_id}/members/{user_id}/roles",
            put(set_member_roles),
        )
        .route(
            "/teams/{team_id}/members/{user_id}/schemeRoles",
            put(set_member_scheme_roles),
        )
}

/// Whether the caller runs the team: a system admin, or a live member holding `team_admin`.
pub fn may_manage_team(r: &Reader, team: Id, caller: &Caller) -> confab_storage::Result<bool> {
    if caller.is_admin() {
        return Ok(true);
    }
    Ok(r.team_member(team, caller.id())?
        .is_some_and(|m| m.delete_at == 0 && m.roles.split_whitespace().any(|r| r == "team_admin")))
}

/// The team must exist (404) and the caller run it (403).
async fn require_team_manager(app: &AppState, caller: &Caller, team: Id) -> ApiResult<()> {
    let caller = caller.clone();
    app.read(move |r| {
        if r.team(team)?.is_none_or(|t| t.delete_at != 0) {
            return Ok(Err(ApiError::not_found("team")));
        }
        Ok(if may_manage_team(r, team, &caller)? {
            Ok(())
        } else {
            Err(ApiError::forbidden())
        })
    })
    .await?
}

/// What `PUT /teams/{id}/patch` and `PUT /teams/{id}` may change (Mattermost's `TeamPatch`;
/// the update route takes a whole team and uses the same fields).
#[derive(Deserialize)]
struct TeamPatchBody {
    id: Option<String>,
    display_name: Option<String>,
    description: Option<String>,
    company_name: Option<String>,
    allowed_domains: Option<String>,
    allow_open_invite: Option<bool>,
}

impl TeamPatchBody {
    fn into_patch(self) -> TeamPatch {
        TeamPatch {
            display_name: self.display_name,
            description: self.description,
            company_name: self.company_name,
            allowed_domains: self.allowed_domains,
            allow_open_invite: self.allow_open_invite,
            invite_id: None,
        }
    }
}

async fn patch_team(
    State(app): State<AppState>,
    caller: Caller,
    Path(team_id): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let team_id = path_id(&team_id, "team_id")?;
    let body: TeamPatchBody = parse_body(&body, "team patch")?;
    write_patch(&app, &caller, team_id, body.into_patch()).await
}

/// `PUT /teams/{id}`: a whole team whose `id` must be the path's.
pub async fn update_team(
    State(app): State<AppState>,
    caller: Caller,
    Path(team_id): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let team_id = path_id(&team_id, "team_id")?;
    let body: TeamPatchBody = parse_body(&body, "team")?;
    if body.id.as_deref() != Some(team_id.to_base32().as_str()) {
        return Err(ApiError::invalid_param("id"));
    }
    if body.display_name.as_deref().is_none_or(str::is_empty) {
        return Err(ApiError::bad_request(
            "model.team.is_valid.name.app_error",
            "Invalid display name.",
        ));
    }
    write_patch(&app, &caller, team_id, body.into_patch()).await
}

async fn write_patch(
    app: &AppState,
    caller: &Caller,
    team_id: Id,
    patch: TeamPatch,
) -> ApiResult<Response> {
    require_team_manager(app, caller, team_id).await?;
    let (index, outcome) = app
        .write(Command::PatchTeam {
            team_id,
            at: now_ms(),
            patch,
        })
        .await?;
    match outcome {
        // The caller runs the team: they see its invite secret.
        Outcome::TeamUpdated(team) => Ok(with_applied(ok(views::team_with_invite(&team)), index)),
        _ => Err(ApiError::internal("unexpected outcome")),
    }
}

/// A fresh invite secret: 26 characters of base32, like every Mattermost id.
pub fn new_invite_id() -> String {
    Id::from_bytes(rand::random()).to_base32()
}

async fn regenerate_invite_id(
    State(app): State<AppState>,
    caller: Caller,
    Path(team_id): Path<String>,
) -> ApiResult<Response> {
    let team_id = path_id(&team_id, "team_id")?;
    write_patch(
        &app,
        &caller,
        team_id,
        TeamPatch {
            invite_id: Some(new_invite_id()),
            ..TeamPatch::default()
        },
    )
    .await
}

/// `GET /teams/invite/{invite_id}`: what the sign-up page shows about the team behind a link.
/// Like Mattermost's, it needs no session (the visitor may have no account yet) and says only
/// the team's names and description.
async fn invite_info(
    State(app): State<AppState>,
    Path(invite_id): Path<String>,
) -> ApiResult<Response> {
    if invite_id.is_empty() || !invite_id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(ApiError::invalid_param("invite_id"));
    }
    let team = app
        .read(move |r| r.team_by_invite(&invite_id))
        .await?
        .ok_or_else(|| ApiError::not_found("team"))?;
    Ok(ok(json!({
        "id": views::id(team.id),
        "name": team.name,
        "display_name": team.display_name,
        "description": team.description,
    })))
}

/// `POST /teams/members/invite?invite_id=…`: the caller joins the team behind the link.
async fn join_by_invite(
    State(app): State<AppState>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> ApiResult<Response> {
    let params = Params::parse(query.as_deref());
    let invite_id = params.get("invite_id").unwrap_or_default().to_string();
    if invite_id.is_empty() {
        // Email invitations (`token=`) need the email sending confab does not do for invites.
        return Err(ApiError::bad_request(
            "api.team.add_user_to_team_from_invite.invalid.app_error",
            "An invite_id is required.",
        ));
    }
    let (index, outcome) = app
        .write(Command::JoinTeamByInvite {
            invite_id,
            user_id: caller.id(),
            at: now_ms(),
        })
        .await?;
    match outcome {
        Outcome::TeamMemberAdded { member, .. } => {
            Ok(with_applied(created(views::team_member(&member)), index))
        }
        _ => Err(ApiError::internal("unexpected outcome")),
    }
}

#[derive(Deserialize)]
struct RolesBody {
    roles: String,
}

#[derive(Deserialize)]
struct SchemeRolesBody {
    scheme_admin: bool,
    #[serde(default = "yes")]
    scheme_user: bool,
    #[serde(default)]
    scheme_guest: bool,
}

fn yes() -> bool {
    true
}

/// Whether `roles` (space-separated) names `admin`, given that every other role in it must be
/// `user` (confab has no custom roles). `None` if it names anything else.
pub fn admin_in_roles(roles: &str, user: &str, admin: &str) -> Option<bool> {
    let mut is_admin = false;
    for role in roles.split_whitespace() {
        if role == admin {
            is_admin = true;
        } else if role != user {
            return None;
        }
    }
    Some(is_admin)
}

/// Whether a `schemeRoles` body asks for an admin; guests and members without the user role
/// are refused (confab has no guests).
fn admin_in_scheme_roles(body: &[u8]) -> ApiResult<bool> {
    let body: SchemeRolesBody = parse_body(body, "scheme roles")?;
    if !body.scheme_user || body.scheme_guest {
        return Err(ApiError::bad_request(
            "api.roles.patch_roles.not_allowed_permission.error",
            "confab has no guest accounts: scheme_user must be true and scheme_guest false.",
        ));
    }
    Ok(body.scheme_admin)
}

async fn set_member_roles(
    State(app): State<AppState>,
    caller: Caller,
    Path((team_id, user_id)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Response> {
    let body: RolesBody = parse_body(&body, "roles")?;
    let admin = admin_in_roles(&body.roles, "team_user", "team_admin")
        .ok_or_else(|| ApiError::invalid_param("team_member_roles"))?;
    set_team_admin(&app, &caller, &team_id, &user_id, admin).await
}

async fn set_member_scheme_roles(
    State(app): State<AppState>,
    caller: Caller,
    Path((team_id, user_id)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Response> {
    let admin = admin_in_scheme_roles(&body)?;
    set_team_admin(&app, &caller, &team_id, &user_id, admin).await
}

async fn set_team_admin(
    app: &AppState,
    caller: &Caller,
    team_id: &str,
    user_id: &str,
    admin: bool,
) -> ApiResult<Response> {
    let team_id = path_id(team_id, "team_id")?;
    let user_id = caller.resolve(user_id)?;
    require_team_manager(app, caller, team_id).await?;
    let (index, _) = app
        .write(Command::SetTeamMemberAdmin {
            team_id,
            user_id,
            admin,
        })
        .await?;
    Ok(with_applied(status_ok(), index))
}

/// Reads a `schemeRoles` body for channel members too.
pub fn scheme_admin(body: &[u8]) -> ApiResult<bool> {
    admin_in_scheme_roles(body)
}

#[cfg(test)]
mod tests {
    use super::admin_in_roles;

    #[test]
    fn roles_bodies_name_only_the_user_and_admin_roles() {
        assert_eq!(
            admin_in_roles("team_user team_admin", "team_user", "team_admin"),
            Some(true)
        );
        assert_eq!(
            admin_in_roles("team_user", "team_user", "team_admin"),
            Some(false)
        );
        assert_eq!(admin_in_roles("", "team_user", "team_admin"), Some(false));
        assert_eq!(
            admin_in_roles("team_user system_admin", "team_user", "team_admin"),
            None
        );
    }
}
