//! Sidebar categories as a user arranged them: the custom categories they made, the order of all
//! categories, each category's sorting, muting and collapsing, and which channels sit where.
//!
//! Nothing is stored until a user changes something: until then the server shows Mattermost's
//! three defaults (Favorites, Channels, Direct Messages) computed from memberships. The first
//! change stores the user's whole layout for that team, and later reads lay the live channels
//! over it: channels the user has left drop out, channels they joined since go to their default
//! category. Favorites stay mirrored with `favorite_channel` preferences both ways, as in
//! Mattermost: a channel is in Favorites exactly when that preference is `"true"`, and a write
//! that moves channels in or out of Favorites saves or deletes the preferences in the same
//! command.
//!
//! Key: `user_id · team_id`. Value: [`Sidebar`].

use crate::apply::{load_user, refuse, Step};
use crate::cf::Cf;
use crate::error::{CommandError, Result};
use crate::id::Id;
use crate::keys::{id2, KeyBuf};
use crate::outcome::Outcome;
use crate::preferences::Preference;
use crate::read::Reader;
use crate::txn::Txn;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// The preference category whose names are a user's favourite channels.
pub const FAVORITE_CHANNEL: &str = "favorite_channel";
/// Most categories one user may have in a team (a bound on one command's work).
pub const MAX_CATEGORIES: usize = 200;
/// Most channels one layout may place (a bound on one command's work).
pub const MAX_PLACED_CHANNELS: usize = 20_000;
/// Longest category name, in characters (Mattermost's channel display name width).
pub const MAX_CATEGORY_NAME_CHARS: usize = 64;

/// What a category is: the three every user has, or one they made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CategoryKind {
    Favorites,
    Channels,
    DirectMessages,
    Custom,
}

impl CategoryKind {
    /// Mattermost's `type` string.
    pub fn as_str(self) -> &'static str {
        match self {
            CategoryKind::Favorites => "favorites",
            CategoryKind::Channels => "channels",
            CategoryKind::DirectMessages => "direct_messages",
            CategoryKind::Custom => "custom",
        }
    }

    pub fn parse(text: &str) -> Option<CategoryKind> {
        Some(match text {
            "favorites" => CategoryKind::Favorites,
            "channels" => CategoryKind::Channels,
            "direct_messages" => CategoryKind::DirectMessages,
            "custom" => CategoryKind::Custom,
            _ => return None,
        })
    }

    /// The three defaults, in their default order, with their names and sortings.
    pub const DEFAULTS: [(CategoryKind, &'static str, Sorting); 3] = [
        (CategoryKind::Favorites, "Favorites", Sorting::Default),
        (CategoryKind::Channels, "Channels", Sorting::Default),
        (
            CategoryKind::DirectMessages,
            "Direct Messages",
            Sorting::Recent,
        ),
    ];
}

/// How a category orders its channels (Mattermost's `sorting`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Sorting {
    /// `""`: the category's usual order (by name; most recent first for direct messages).
    Default,
    Alpha,
    Recent,
    /// As the user dragged them; channels new to the category go on top.
    Manual,
}

impl Sorting {
    pub fn as_str(self) -> &'static str {
        match self {
            Sorting::Default => "",
            Sorting::Alpha => "alpha",
            Sorting::Recent => "recent",
            Sorting::Manual => "manual",
        }
    }

    pub fn parse(text: &str) -> Option<Sorting> {
        Some(match text {
            "" => Sorting::Default,
            "alpha" => Sorting::Alpha,
            "recent" => Sorting::Recent,
            "manual" => Sorting::Manual,
            _ => return None,
        })
    }
}

/// One category as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SidebarCategory {
    /// Mattermost's id: `{type}_{user_id}_{team_id}` for the defaults, `custom_{id}` otherwise.
    pub id: String,
    pub kind: CategoryKind,
    pub display_name: String,
    pub sorting: Sorting,
    pub muted: bool,
    pub collapsed: bool,
    pub channel_ids: Vec<Id>,
}

/// A user's stored layout in one team, categories in sidebar order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sidebar {
    pub categories: Vec<SidebarCategory>,
}

/// What one `SetSidebar` changed, for the events and the answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SidebarChange {
    pub user_id: Id,
    pub team_id: Id,
    /// The layout as now stored.
    pub categories: Vec<SidebarCategory>,
    /// Ids of categories that are new, gone, or stored differently than before.
    pub created: Vec<String>,
    pub deleted: Vec<String>,
    pub updated: Vec<String>,
    /// Whether the order of the categories changed.
    pub order_changed: bool,
    /// `favorite_channel` preferences the change saved (`"true"`) and deleted.
    pub favorites_saved: Vec<Preference>,
    pub favorites_deleted: Vec<Preference>,
}

fn sidebar_key(user: Id, team: Id) -> Vec<u8> {
    id2(user, team)
}

fn favorite_key(user: Id, channel: Id) -> Vec<u8> {
    let name = channel.to_base32();
    let mut key = KeyBuf::new().id(user).build();
    key.push(FAVORITE_CHANNEL.len() as u8);
    key.extend_from_slice(FAVORITE_CHANNEL.as_bytes());
    key.extend_from_slice(name.as_bytes());
    key
}

/// Whether `user` is in `channel` as one of their channels of `team` (or a direct or group
/// channel, which belongs to every team's sidebar).
fn placed_in_team(txn: &mut Txn, user: Id, team: Id, channel: Id) -> Result<Option<bool>> {
    let key = |t: Id| KeyBuf::new().id(user).id(t).id(channel).build();
    if txn.exists(Cf::UseridTeamidChannelid, &key(team))? {
        return Ok(Some(false));
    }
    if txn.exists(Cf::UseridTeamidChannelid, &key(Id::NONE))? {
        return Ok(Some(true));
    }
    Ok(None)
}

/// Checks a layout's shape: the three defaults exactly once, unique ids, names, bounds, and no
/// channel in two places.
pub fn validate(categories: &[SidebarCategory]) -> std::result::Result<(), String> {
    if categories.len() > MAX_CATEGORIES {
        return Err(format!("at most {MAX_CATEGORIES} categories"));
    }
    for (kind, _, _) in CategoryKind::DEFAULTS {
        let count = categories.iter().filter(|c| c.kind == kind).count();
        if count != 1 {
            return Err(format!("exactly one {} category", kind.as_str()));
        }
    }
    let mut ids = BTreeSet::new();
    let mut channels = BTreeSet::new();
    let mut placed = 0usize;
    for category in categories {
        if category.id.is_empty() || category.id.len() > 128 || !ids.insert(category.id.as_str()) {
            return Err(format!(
                "category id {:?} is empty or repeated",
                category.id
            ));
        }
        let chars = category.display_name.chars().count();
        if chars == 0 || chars > MAX_CATEGORY_NAME_CHARS {
            return Err(format!(
                "a category name is 1 to {MAX_CATEGORY_NAME_CHARS} characters"
            ));
        }
        placed += category.channel_ids.len();
        if placed > MAX_PLACED_CHANNELS {
            return Err(format!("at most {MAX_PLACED_CHANNELS} channels"));
        }
        for channel in &category.channel_ids {
            if !channels.insert(*channel) {
                return Err(format!("channel {channel} is in two categories"));
            }
        }
    }
    Ok(())
}

/// Applies `SetSidebar`: stores the layout (channels the user is not in are dropped; a direct
/// or group channel may not go in Channels, nor a team channel in Direct Messages) and mirrors
/// Favorites into `favorite_channel` preferences.
pub(crate) fn set(
    txn: &mut Txn,
    user: Id,
    team: Id,
    categories: &[SidebarCategory],
) -> Step<Outcome> {
    if let Err(why) = validate(categories) {
        return refuse(CommandError::Invalid(why));
    }
    let owner = load_user(txn, user)?;
    if owner.delete_at != 0 {
        return refuse(CommandError::Deleted(format!("user {user}")));
    }
    let in_team = txn
        .get::<crate::model::TeamMember>(Cf::TeamidUseridMember, &id2(team, user))?
        .is_some_and(|m| m.delete_at == 0);
    if !in_team {
        return refuse(CommandError::NotMember {
            user: user.to_string(),
            of: format!("team {team}"),
        });
    }
    let mut stored = Vec::with_capacity(categories.len());
    for category in categories {
        let mut kept = Vec::with_capacity(category.channel_ids.len());
        for &channel in &category.channel_ids {
            let Some(teamless) = placed_in_team(txn, user, team, channel)? else {
                continue;
            };
            let misplaced = match category.kind {
                CategoryKind::Channels => teamless,
                CategoryKind::DirectMessages => !teamless,
                CategoryKind::Favorites | CategoryKind::Custom => false,
            };
            if misplaced {
                return refuse(CommandError::Invalid(format!(
                    "channel {channel} cannot go in the {} category",
                    category.kind.as_str()
                )));
            }
            kept.push(channel);
        }
        stored.push(SidebarCategory {
            channel_ids: kept,
            ..category.clone()
        });
    }

    let key = sidebar_key(user, team);
    let before: Option<Sidebar> = txn.get(Cf::UseridTeamidSidebar, &key)?;
    let before = before.map(|s| s.categories).unwrap_or_default();
    let had = |id: &str| before.iter().find(|c| c.id == id);
    let created: Vec<String> = stored
        .iter()
        .filter(|c| c.kind == CategoryKind::Custom && had(&c.id).is_none())
        .map(|c| c.id.clone())
        .collect();
    let deleted: Vec<String> = before
        .iter()
        .filter(|c| !stored.iter().any(|n| n.id == c.id))
        .map(|c| c.id.clone())
        .collect();
    let updated: Vec<String> = stored
        .iter()
        .filter(|c| !created.contains(&c.id) && had(&c.id) != Some(*c))
        .map(|c| c.id.clone())
        .collect();
    let order_of = |list: &[SidebarCategory]| list.iter().map(|c| c.id.clone()).collect::<Vec<_>>();
    let order_changed = before.is_empty() || order_of(&before) != order_of(&stored);

    // Favorites: the category's channels are exactly the favourites among this team's (and the
    // teamless) channels.
    let favorites: BTreeSet<Id> = stored
        .iter()
        .filter(|c| c.kind == CategoryKind::Favorites)
        .flat_map(|c| c.channel_ids.iter().copied())
        .collect();
    let mut favorites_saved = Vec::new();
    let mut favorites_deleted = Vec::new();
    for category in &stored {
        for &channel in &category.channel_ids {
            let pref_key = favorite_key(user, channel);
            let is_favorite = txn
                .get_raw(Cf::UseridPreference, &pref_key)?
                .is_some_and(|v| v == b"true");
            let preference = Preference {
                user_id: user,
                category: FAVORITE_CHANNEL.to_string(),
                name: channel.to_base32(),
                value: "true".to_string(),
            };
            if favorites.contains(&channel) && !is_favorite {
                txn.put_raw(Cf::UseridPreference, pref_key, b"true".to_vec());
                favorites_saved.push(preference);
            } else if !favorites.contains(&channel) && is_favorite {
                txn.delete(Cf::UseridPreference, pref_key);
                favorites_deleted.push(preference);
            }
        }
    }

    txn.put(
        Cf::UseridTeamidSidebar,
        key,
        &Sidebar {
            categories: stored.clone(),
        },
    )?;
    Ok(Outcome::SidebarChanged(Box::new(SidebarChange {
        user_id: user,
        team_id: team,
        categories: stored,
        created,
        deleted,
        updated,
        order_changed,
        favorites_saved,
        favorites_deleted,
    })))
}

impl Reader<'_> {
    /// The layout `user` stored for `team`, if they ever changed it: one point lookup.
    pub fn sidebar(&self, user: Id, team: Id) -> Result<Option<Sidebar>> {
        self.get(Cf::UseridTeamidSidebar, &sidebar_key(user, team))
    }
}
