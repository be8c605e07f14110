//! Teams and team membership.

use super::{created, ok, parse_body, path_id, with_applied, AppState, Caller, Params};
use crate::clock::now_ms;
use crate::error::{ApiError, ApiResult};
use crate::views;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use confab_storage::{validate, Command, Id, Outcome, Reader, Team, TeamType};
use serde::Deserialize;
use serde_json::Value;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/teams", post(create_team).get(list_teams))
        .route(
            "/teams/{team_id}",
            get(get_team).put(super::team_admin::update_team),
        )
        .route("/teams/name/{name}", get(team_by_name))
        .route(
            "/teams/{team_id}/members",
            post(add_member).get(list_members),
        )
        .route("/teams/{team_id}/members/{user_id}", get(get_member))
        .route("/users/{user_id}/teams", get(teams_of_user))
        .route("/users/{user_id}/teams/members", get(team_members_of_user))
}

/// Team data is for its members (and system admins).
pub fn can_read_team(r: &Reader, team: Id, user: Id, admin: bool) -> confab_storage::Result<bool> {
    Ok(admin || r.team_member(team, user)?.is_some())
}

#[derive(Deserialize)]
struct NewTeam {
    name: String,
    display_name: String,
    #[serde(rename = "type", default = "open")]
    team_type: String,
}

fn open() -> String {
    "O".into()
}

async fn create_team(
    State(app): State<AppState>,
    caller: Caller,
    body: Bytes,
) -> ApiResult<Response> {
    let new: NewTeam = parse_body(&body, "team")?;
    let name = new.name.trim().to_lowercase();
    validate::team_name(&name).map_err(|_| {
        ApiError::bad_request(
            "model.team.is_valid.url.app_error",
            "Team name must be 2–64 lowercase letters, digits or '-'.",
        )
    })?;
    validate::display_name(&new.display_name).map_err(|_| {
        ApiError::bad_request(
            "model.team.is_valid.name.app_error",
            "Invalid display name.",
        )
    })?;
    let team_type = match new.team_type.as_str() {
        "O" => TeamType::Open,
        "I" => TeamType::Invite,
        _ => {
            return Err(ApiError::bad_request(
                "model.team.is_valid.type.app_error",
                "Invalid team type.",
            ))
        }
    };
    let (index, outcome) = app
        .write(Command::CreateTeam {
            id: Id::from_bytes(rand::random()),
            at: now_ms(),
            name,
            display_name: new.display_name,
            team_type,
            creator_id: caller.id(),
            town_square_id: Id::from_bytes(rand::random()),
            off_topic_id: Id::from_bytes(rand::random()),
            invite_id: super::team_admin::new_invite_id(),
        })
        .await?;
    match outcome {
        Outcome::TeamCreated { team, .. } => {
            Ok(with_applied(created(views::team_with_invite(&team)), index))
        }
        _ => Err(ApiError::internal("unexpected outcome")),
    }
}

/// GET /teams: the teams the caller may see (all for an admin; open ones and their own for
/// others), paged after that filter so no page comes back short. With
/// `include_total_count=true` the answer is `{teams, total_count}` (the mobile app's "join a
/// team" screen). Reads every team record: teams are few, unlike users or posts.
async fn list_teams(
    State(app): State<AppState>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> ApiResult<Response> {
    let params = Params::parse(query.as_deref());
    let (page, per_page) = params.paging()?;
    let with_total = params.bool("include_total_count");
    let me = caller.id();
    let admin = caller.is_admin();
    let (teams, total) = app
        .read(move |r| {
            let mut visible = Vec::new();
            for team in r.teams(0, usize::MAX)? {
                if team.delete_at != 0 {
                    continue;
                }
                let member = admin || r.team_member(team.id, me)?.is_some();
                if member {
                    visible.push(views::team_with_invite(&team));
                } else if team.open_invite() {
                    visible.push(views::team(&team));
                }
            }
            let total = visible.len();
            let page: Vec<Value> = visible
                .into_iter()
                .skip(page.saturating_mul(per_page))
                .take(per_page)
                .collect();
            Ok::<_, confab_storage::StorageError>((page, total))
        })
        .await?;
    let list = Value::Array(teams);
    if with_total {
        Ok(ok(serde_json::json!({"teams": list, "total_count": total})))
    } else {
        Ok(ok(list))
    }
}

/// A team the caller may see (a member, an admin, or anyone for a team open to all), as they
/// see it: members and admins get the invite secret.
async fn visible_team(app: &AppState, caller: &Caller, team: Option<Team>) -> ApiResult<Value> {
    let team = team.ok_or_else(|| ApiError::not_found("team"))?;
    let (id, me, admin) = (team.id, caller.id(), caller.is_admin());
    if app.read(move |r| can_read_team(r, id, me, admin)).await? {
        Ok(views::team_with_invite(&team))
    } else if team.open_invite() && team.delete_at == 0 {
        Ok(views::team(&team))
    } else {
        Err(ApiError::forbidden())
    }
}

async fn get_team(
    State(app): State<AppState>,
    caller: Caller,
    Path(team_id): Path<String>,
) -> ApiResult<Response> {
    let id = path_id(&team_id, "team_id")?;
    let team = app.read(move |r| r.team(id)).await?;
    Ok(ok(visible_team(&app, &caller, team).await?))
}

async fn team_by_name(
    State(app): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    let team = app.read(move |r| r.team_by_name(&name)).await?;
    Ok(ok(visible_team(&app, &caller, team).await?))
}

#[derive(Deserialize)]
struct NewMember {
    user_id: String,
}

async fn add_member(
    State(app): State<AppState>,
    caller: Caller,
    Path(team_id): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let team_id = path_id(&team_id, "team_id")?;
    let new: NewMember = parse_body(&body, "team member")?;
    let user_id = path_id(&new.user_id, "user_id")?;
    let (me, admin) = (caller.id(), caller.is_admin());
    let allowed = app
        .read(move |r| {
            let Some(team) = r.team(team_id)? else {
                return Ok(None);
            };
            let caller_member = r.team_member(team_id, me)?;
            let team_admin = caller_member
                .as_ref()
                .is_some_and(|m| m.roles.contains("team_admin"));
            // Anyone may join a team open to all; members may add others; other teams need
            // a team or system admin (or the invite link).
            Ok(Some(
                admin
                    || team_admin
                    || (team.open_invite() && (user_id == me || caller_member.is_some())),
            ))
        })
        .await?
        .ok_or_else(|| ApiError::not_found("team"))?;
    if !allowed {
        return Err(ApiError::forbidden());
    }
    let (index, outcome) = app
        .write(Command::AddTeamMember {
            team_id,
            user_id,
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

async fn list_members(
    State(app): State<AppState>,
    caller: Caller,
    Path(team_id): Path<String>,
    RawQuery(query): RawQuery,
) -> ApiResult<Response> {
    let team_id = path_id(&team_id, "team_id")?;
    let (page, per_page) = Params::parse(query.as_deref()).paging()?;
    let (me, admin) = (caller.id(), caller.is_admin());
    let members = app
        .read(move |r| {
            if !can_read_team(r, team_id, me, admin)? {
                return Ok(None);
            }
            Ok(Some(r.team_members(team_id, page, per_page)?))
        })
        .await?
        .ok_or_else(ApiError::forbidden)?;
    Ok(ok(Value::Array(
        members.iter().map(views::team_member).collect(),
    )))
}

async fn get_member(
    State(app): State<AppState>,
    caller: Caller,
    Path((team_id, user_id)): Path<(String, String)>,
) -> ApiResult<Response> {
    let team_id = path_id(&team_id, "team_id")?;
    let user_id = caller.resolve(&user_id)?;
    let (me, admin) = (caller.id(), caller.is_admin());
    let member = app
        .read(move |r| {
            if !can_read_team(r, team_id, me, admin)? {
                return Ok(Err(ApiError::forbidden()));
            }
            Ok(r.team_member(team_id, user_id)?
                .ok_or_else(|| ApiError::not_found("team member")))
        })
        .await??;
    Ok(ok(views::team_member(&member)))
}

async fn teams_of_user(
    State(app): State<AppState>,
    caller: Caller,
    Path(user_id): Path<String>,
) -> ApiResult<Response> {
    let user_id = caller.resolve(&user_id)?;
    caller.require_self_or_admin(user_id)?;
    let teams = app.read(move |r| r.teams_of_user(user_id)).await?;
    Ok(ok(Value::Array(
        teams.iter().map(views::team_with_invite).collect(),
    )))
}

async fn team_members_of_user(
    State(app): State<AppState>,
    caller: Caller,
    Path(user_id): Path<String>,
) -> ApiResult<Response> {
    let user_id = caller.resolve(&user_id)?;
    caller.require_self_or_admin(user_id)?;
    let members = app
        .read(move |r| {
            let mut members = Vec::new();
            for team in r.teams_of_user(user_id)? {
                members.extend(r.team_member(team.id, user_id)?);
            }
            Ok(members)
        })
        .await?;
    Ok(ok(Value::Array(
        members.iter().map(views::team_member).collect(),
    )))
}
