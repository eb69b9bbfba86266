//! Blocking: one person stops seeing another, and the other is not told.
//!
//! What a block does, and where:
//! - the store hides the direct room of the pair from the blocker
//!   ([`Store::rooms_of`](crate::store::Store::rooms_of) leaves it out), so `hello`,
//!   cluster reconciliation and the rooms-per-user count all agree without knowing
//!   about blocks;
//! - blocking takes the room away from the blocker's open connections on every node
//!   (`left`, as if they had left it); unblocking announces it again with its history;
//! - opening a direct room towards someone who blocks you opens it for you alone
//!   (see `open_direct`): you can write, they never see it — and you cannot tell;
//! - channels and code rooms are shared with others, so nothing is hidden there by
//!   the server: clients hide a blocked person's messages (the list comes in `ready`
//!   and after every change as `blocked`).

use natter_protocol::{ErrorCode, ServerMsg, UserId};

use super::{Conversation, Outcome, Reject};
use crate::broker::{Effect, Target};
use crate::store::Blocking;
use crate::telemetry;

impl Conversation {
    /// `user` blocks `other`.
    pub(super) async fn block(&self, user: &UserId, other: &UserId) -> Outcome {
        if user == other {
            return Err(Reject::new(
                ErrorCode::CannotBlockSelf,
                "You cannot block yourself.".into(),
            ));
        }
        let store = self.hub.store().clone();
        let max = self.quotas.settings().max_blocks_per_user;
        match store.block(user, other, max).await {
            Ok(Blocking::Added | Blocking::Already) => {}
            Ok(Blocking::Full) => {
                telemetry::refused("too_many_blocks");
                return Err(Reject::new(
                    ErrorCode::TooManyBlocks,
                    format!(
                        "You block {max} people, as many as one person can; unblock someone first."
                    ),
                ));
            }
            Err(crate::store::StoreError::NotFound) => {
                return Err(Reject::new(ErrorCode::NoSuchUser, "No such user.".into()))
            }
            Err(err) => return Err(err.into()),
        }
        // Stored first: from here on `rooms_of` hides the room, so no reconciliation
        // or reconnect brings it back.
        if let Some(room) = store.find_direct(user, other).await? {
            self.hub.publish_with(
                Target::User(user.clone()),
                Effect::NotMember {
                    room: room.id,
                    user: user.clone(),
                },
                &ServerMsg::Left { room: room.id },
            );
        }
        self.send_block_list(user).await
    }

    /// `user` unblocks `other`: their direct room, if any, comes back.
    pub(super) async fn unblock(&self, user: &UserId, other: &UserId) -> Outcome {
        let store = self.hub.store().clone();
        if store.unblock(user, other).await? {
            if let Some(room) = store.find_direct(user, other).await? {
                self.announce_membership(user, room.id, user).await?;
            }
        }
        self.send_block_list(user).await
    }

    /// Tells every connection of `user`, on every node, whom they block now.
    async fn send_block_list(&self, user: &UserId) -> Outcome {
        let users = self.hub.store().blocked_by(user).await?;
        self.hub
            .publish(Target::User(user.clone()), &ServerMsg::Blocked { users });
        Ok(())
    }
}
