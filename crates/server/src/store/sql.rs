//! The [`Store`](super::Store) methods SQLite and PostgreSQL share: the same statements
//! in portable SQL (`$n` parameters, numbered in order of appearance, which both
//! databases bind by position), written once.
//!
//! [`sql_store!`] implements `Store` for a sqlx-backed store (and its sqlx database)
//! that has a `pool` field (reads) and the primitives where the databases really
//! differ:
//! - `writer()`: the pool writes go through (SQLite: one connection of its own, so
//!   writes queue in the pool, fairly, instead of meeting in SQLite's sleeping busy
//!   handler; PostgreSQL: the one pool);
//! - `write_transaction()`: SQLite's `BEGIN IMMEDIATE` (a plain `BEGIN` for PostgreSQL);
//! - `lock_room(tx, room)`: PostgreSQL's row lock (`FOR UPDATE`; SQLite's immediate
//!   transaction already holds the database's write lock).
//!
//! The methods whose SQL really differs are the macro's last argument: the append path
//! (and PostgreSQL's one-query `latest_seqs`). [`super::accounts`] does the same for
//! accounts.
//!
//! Why one long file: a `macro_rules!` body cannot be split across files, and the
//! statements are the point — one place shows every query both databases run.

/// Implements [`Store`](crate::store::Store) for `$store` with the shared statements
/// plus the backend's own methods given in braces. See the module docs.
macro_rules! sql_store {
    ($store:ty, $db:ty, { $($own:tt)* }) => {
        impl $store {
            /// The room `clause` (with one `$1`, bound to `bind`) selects.
            async fn room_where(
                &self,
                clause: &str,
                bind: &str,
            ) -> $crate::store::StoreResult<Option<$crate::store::RoomRecord>> {
                let row = sqlx::query(&format!(
                    "SELECT {} FROM rooms WHERE {clause}",
                    $crate::store::ROOM_COLUMNS
                ))
                .bind(bind)
                .fetch_optional(&self.pool)
                .await?;
                row.as_ref().map($crate::store::room_from_row).transpose()
            }

            /// Inserts a room of `kind` with one or two identifying columns (fixed
            /// names, bound values); a taken name or code is a conflict.
            async fn insert_room(
                &self,
                kind: &str,
                keys: &[(&str, &str)],
                delete_when_empty: bool,
            ) -> $crate::store::StoreResult<$crate::store::RoomRecord> {
                let columns: String = keys.iter().map(|(column, _)| format!("{column}, ")).collect();
                // $1 is the kind, then one per key, then the two fixed columns.
                let marks: String = (2..keys.len() + 2).map(|n| format!("${n}, ")).collect();
                let last = keys.len() + 2;
                let sql = format!(
                    "INSERT INTO rooms (kind, {columns}delete_when_empty, created_at) \
                     VALUES ($1, {marks}${last}, ${}) RETURNING {}",
                    last + 1,
                    $crate::store::ROOM_COLUMNS
                );
                let mut query = sqlx::query(&sql).bind(kind);
                for (_, value) in keys {
                    query = query.bind(*value);
                }
                let row = query
                    .bind(delete_when_empty)
                    .bind($crate::clock::now_ms())
                    .fetch_one(self.writer())
                    .await
                    .map_err($crate::store::conflict_or_database)?;
                $crate::store::room_from_row(&row)
            }
        }

        #[async_trait::async_trait]
        impl $crate::store::Store for $store {
            async fn create_user(
                &self,
                user: &$crate::store::UserRecord,
            ) -> $crate::store::StoreResult<()> {
                sqlx::query(
                    "INSERT INTO users (id, secret_hash, name, created_at, last_seen_at) \
                     VALUES ($1, $2, $3, $4, $4)",
                )
                .bind(&user.id.0)
                .bind(&user.secret_hash)
                .bind(&user.name)
                .bind($crate::clock::now_ms())
                .execute(self.writer())
                .await
                .map_err($crate::store::conflict_or_database)?;
                Ok(())
            }

            async fn find_user(
                &self,
                id: &natter_protocol::UserId,
            ) -> $crate::store::StoreResult<Option<$crate::store::UserRecord>> {
                use sqlx::Row;
                let row = sqlx::query("SELECT id, secret_hash, name FROM users WHERE id = $1")
                    .bind(&id.0)
                    .fetch_optional(&self.pool)
                    .await?;
                row.map(|row| {
                    Ok($crate::store::UserRecord {
                        id: natter_protocol::UserId(row.try_get("id")?),
                        secret_hash: row.try_get("secret_hash")?,
                        name: row.try_get("name")?,
                    })
                })
                .transpose()
            }

            async fn create_channel(
                &self,
                name: &str,
                delete_when_empty: bool,
            ) -> $crate::store::StoreResult<$crate::store::RoomRecord> {
                let key = natter_protocol::validate::name_key(name);
                self.insert_room(
                    "channel",
                    &[("name", name), ("name_key", &key)],
                    delete_when_empty,
                )
                .await
            }

            async fn find_channel(
                &self,
                name: &str,
            ) -> $crate::store::StoreResult<Option<$crate::store::RoomRecord>> {
                self.room_where("name_key = $1", &natter_protocol::validate::name_key(name))
                    .await
            }

            async fn list_channels(
                &self,
            ) -> $crate::store::StoreResult<Vec<$crate::store::RoomRecord>> {
                let rows = sqlx::query(&format!(
                    "SELECT {} FROM rooms WHERE kind = 'channel' ORDER BY id",
                    $crate::store::ROOM_COLUMNS
                ))
                .fetch_all(&self.pool)
                .await?;
                rows.iter().map($crate::store::room_from_row).collect()
            }

            async fn channel_directory(
                &self,
            ) -> $crate::store::StoreResult<Vec<natter_protocol::ChannelListing>> {
                let rows: Vec<(i64, String, i64)> = sqlx::query_as(
                    "SELECT r.id, r.name, COUNT(m.user_id) AS members \
                     FROM rooms r LEFT JOIN members m ON m.room_id = r.id \
                     WHERE r.kind = 'channel' GROUP BY r.id, r.name, r.name_key \
                     ORDER BY members DESC, r.name_key",
                )
                .fetch_all(&self.pool)
                .await?;
                Ok(rows
                    .into_iter()
                    .map(|(id, name, members)| natter_protocol::ChannelListing {
                        id: natter_protocol::RoomId(id),
                        name,
                        members: u32::try_from(members).unwrap_or(u32::MAX),
                    })
                    .collect())
            }

            async fn create_code_room(
                &self,
                code: &str,
                delete_when_empty: bool,
            ) -> $crate::store::StoreResult<$crate::store::RoomRecord> {
                self.insert_room("code", &[("code", code)], delete_when_empty)
                    .await
            }

            async fn find_code_room(
                &self,
                code: &str,
            ) -> $crate::store::StoreResult<Option<$crate::store::RoomRecord>> {
                self.room_where("code = $1", code).await
            }

            async fn find_direct(
                &self,
                a: &natter_protocol::UserId,
                b: &natter_protocol::UserId,
            ) -> $crate::store::StoreResult<Option<$crate::store::RoomRecord>> {
                self.room_where("direct_key = $1", &$crate::store::direct_key(a, b))
                    .await
            }

            async fn room(
                &self,
                id: natter_protocol::RoomId,
            ) -> $crate::store::StoreResult<Option<$crate::store::RoomRecord>> {
                let row = sqlx::query(&format!(
                    "SELECT {} FROM rooms WHERE id = $1",
                    $crate::store::ROOM_COLUMNS
                ))
                .bind(id.0)
                .fetch_optional(&self.pool)
                .await?;
                row.as_ref().map($crate::store::room_from_row).transpose()
            }

            async fn add_member(
                &self,
                room: natter_protocol::RoomId,
                user: &natter_protocol::UserId,
            ) -> $crate::store::StoreResult<bool> {
                let done = sqlx::query(
                    "INSERT INTO members (room_id, user_id, joined_at) VALUES ($1, $2, $3) \
                     ON CONFLICT DO NOTHING",
                )
                .bind(room.0)
                .bind(&user.0)
                .bind($crate::clock::now_ms())
                .execute(self.writer())
                .await
                .map_err($crate::store::missing_or_database)?;
                let added = done.rows_affected() == 1;
                if added {
                    // A newcomer's read position starts at the room's newest seq: its
                    // history is there to read, not news to count.
                    sqlx::query(
                        "INSERT INTO read_positions (user_id, room_id, seq) \
                         SELECT CAST($1 AS TEXT), id, latest_seq FROM rooms WHERE id = $2 \
                         ON CONFLICT (user_id, room_id) DO UPDATE SET seq = excluded.seq \
                         WHERE excluded.seq > read_positions.seq",
                    )
                    .bind(&user.0)
                    .bind(room.0)
                    .execute(self.writer())
                    .await?;
                }
                Ok(added)
            }

            async fn rooms_of(
                &self,
                user: &natter_protocol::UserId,
            ) -> $crate::store::StoreResult<Vec<$crate::store::RoomRecord>> {
                let rows = sqlx::query(
                    "SELECT rooms.id, rooms.kind, rooms.name, rooms.code, rooms.direct_key, \
                            rooms.delete_when_empty, rooms.latest_seq \
                     FROM rooms JOIN members ON members.room_id = rooms.id \
                     WHERE members.user_id = $1 \
                       AND NOT (rooms.kind = 'direct' AND EXISTS ( \
                           SELECT 1 FROM blocks WHERE blocks.user_id = $1 \
                             AND rooms.direct_key IN ($1 || '|' || blocks.blocked_id, \
                                                      blocks.blocked_id || '|' || $1))) \
                     ORDER BY members.joined_at, rooms.id",
                )
                .bind(&user.0)
                .fetch_all(&self.pool)
                .await?;
                rows.iter().map($crate::store::room_from_row).collect()
            }

            async fn block(
                &self,
                user: &natter_protocol::UserId,
                other: &natter_protocol::UserId,
                max: usize,
            ) -> $crate::store::StoreResult<$crate::store::Blocking> {
                // One statement: the count and the insert cannot be split by another
                // block of the same user's (on PostgreSQL two at the very same moment
                // may both pass; the limit bounds storage, a one-off excess is harmless).
                let done = sqlx::query(
                    "INSERT INTO blocks (user_id, blocked_id, created_at) \
                     SELECT $1, $2, $3 \
                     WHERE (SELECT COUNT(*) FROM blocks WHERE user_id = $1) < $4 \
                     ON CONFLICT DO NOTHING",
                )
                .bind(&user.0)
                .bind(&other.0)
                .bind($crate::clock::now_ms())
                .bind(i64::try_from(max).unwrap_or(i64::MAX))
                .execute(self.writer())
                .await
                .map_err($crate::store::missing_or_database)?;
                Ok(if done.rows_affected() == 1 {
                    $crate::store::Blocking::Added
                } else if $crate::store::Store::blocks(self, user, other).await? {
                    $crate::store::Blocking::Already
                } else {
                    $crate::store::Blocking::Full
                })
            }

            async fn unblock(
                &self,
                user: &natter_protocol::UserId,
                other: &natter_protocol::UserId,
            ) -> $crate::store::StoreResult<bool> {
                let done = sqlx::query("DELETE FROM blocks WHERE user_id = $1 AND blocked_id = $2")
                    .bind(&user.0)
                    .bind(&other.0)
                    .execute(self.writer())
                    .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn blocked_by(
                &self,
                user: &natter_protocol::UserId,
            ) -> $crate::store::StoreResult<Vec<natter_protocol::UserSummary>> {
                use sqlx::Row;
                let rows = sqlx::query(
                    "SELECT users.id, users.name FROM blocks \
                     JOIN users ON users.id = blocks.blocked_id \
                     WHERE blocks.user_id = $1 ORDER BY blocks.created_at, users.id",
                )
                .bind(&user.0)
                .fetch_all(&self.pool)
                .await?;
                rows.iter()
                    .map(|row| {
                        Ok(natter_protocol::UserSummary {
                            id: natter_protocol::UserId(row.try_get("id")?),
                            name: row.try_get("name")?,
                        })
                    })
                    .collect()
            }

            async fn blocks(
                &self,
                user: &natter_protocol::UserId,
                other: &natter_protocol::UserId,
            ) -> $crate::store::StoreResult<bool> {
                let found: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM blocks WHERE user_id = $1 AND blocked_id = $2",
                )
                .bind(&user.0)
                .bind(&other.0)
                .fetch_one(&self.pool)
                .await?;
                Ok(found > 0)
            }

            async fn open_direct(
                &self,
                a: &natter_protocol::UserId,
                b: &natter_protocol::UserId,
            ) -> $crate::store::StoreResult<($crate::store::RoomRecord, bool)> {
                let key = $crate::store::direct_key(a, b);
                let mut tx = self.write_transaction().await?;
                // Two nodes opening the same pair at once: one inserts, the other finds it.
                let inserted = sqlx::query(&format!(
                    "INSERT INTO rooms (kind, direct_key, created_at) VALUES ('direct', $1, $2) \
                     ON CONFLICT (direct_key) DO NOTHING RETURNING {}",
                    $crate::store::ROOM_COLUMNS
                ))
                .bind(&key)
                .bind($crate::clock::now_ms())
                .fetch_optional(&mut *tx)
                .await?;
                let Some(row) = inserted else {
                    tx.rollback().await?;
                    let room = self
                        .room_where("direct_key = $1", &key)
                        .await?
                        .ok_or($crate::store::StoreError::NotFound)?;
                    return Ok((room, false));
                };
                let room = $crate::store::room_from_row(&row)?;
                for user in [a, b] {
                    sqlx::query(
                        "INSERT INTO members (room_id, user_id, joined_at) VALUES ($1, $2, $3)",
                    )
                    .bind(room.id.0)
                    .bind(&user.0)
                    .bind($crate::clock::now_ms())
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                Ok((room, true))
            }

            async fn remove_member(
                &self,
                room: natter_protocol::RoomId,
                user: &natter_protocol::UserId,
            ) -> $crate::store::StoreResult<$crate::store::Departure> {
                let mut tx = self.write_transaction().await?;
                // Locked: two members leaving at once see each other's delete (exactly
                // one counts zero), and a join waits for this transaction — then finds
                // the room gone — or, committed first, is counted here.
                Self::lock_room(&mut tx, room).await?;
                sqlx::query("DELETE FROM members WHERE room_id = $1 AND user_id = $2")
                    .bind(room.0)
                    .bind(&user.0)
                    .execute(&mut *tx)
                    .await?;
                let remaining: i64 =
                    sqlx::query_scalar("SELECT COUNT(*) FROM members WHERE room_id = $1")
                        .bind(room.0)
                        .fetch_one(&mut *tx)
                        .await?;
                let mut room_deleted = false;
                if remaining == 0 {
                    // Memberships and messages go with it (ON DELETE CASCADE).
                    let deleted =
                        sqlx::query("DELETE FROM rooms WHERE id = $1 AND delete_when_empty")
                            .bind(room.0)
                            .execute(&mut *tx)
                            .await?;
                    room_deleted = deleted.rows_affected() == 1;
                }
                tx.commit().await?;
                Ok($crate::store::Departure {
                    remaining: u64::try_from(remaining).unwrap_or(0),
                    room_deleted,
                })
            }

            async fn seen(
                &self,
                user: &natter_protocol::UserId,
                now: i64,
            ) -> $crate::store::StoreResult<()> {
                sqlx::query("UPDATE users SET last_seen_at = $1 WHERE id = $2 AND last_seen_at < $3")
                    .bind(now)
                    .bind(&user.0)
                    .bind(now - $crate::store::SEEN_EVERY_MS)
                    .execute(self.writer())
                    .await?;
                Ok(())
            }

            async fn delete_stale(
                &self,
                guests_seen_before: i64,
                unverified_before: i64,
            ) -> $crate::store::StoreResult<u64> {
                use sqlx::Row;
                let mut tx = self.write_transaction().await?;
                let unverified: Vec<String> = sqlx::query(
                    "SELECT user_id FROM accounts WHERE verified_at IS NULL AND created_at < $1 \
                     LIMIT $2",
                )
                .bind(unverified_before)
                .bind($crate::store::STALE_BATCH)
                .fetch_all(&mut *tx)
                .await?
                .iter()
                .map(|row| row.try_get("user_id"))
                .collect::<Result<_, _>>()?;
                let guests: Vec<String> = sqlx::query(
                    "SELECT id FROM users u WHERE last_seen_at < $1 \
                     AND NOT EXISTS (SELECT 1 FROM accounts a WHERE a.user_id = u.id) LIMIT $2",
                )
                .bind(guests_seen_before)
                .bind($crate::store::STALE_BATCH)
                .fetch_all(&mut *tx)
                .await?
                .iter()
                .map(|row| row.try_get("id"))
                .collect::<Result<_, _>>()?;
                for user in &unverified {
                    for statement in [
                        "DELETE FROM tokens WHERE user_id = $1",
                        "DELETE FROM sessions WHERE user_id = $1",
                        "DELETE FROM accounts WHERE user_id = $1",
                    ] {
                        sqlx::query(statement).bind(user).execute(&mut *tx).await?;
                    }
                }
                for user in unverified.iter().chain(&guests) {
                    for statement in [
                        "DELETE FROM members WHERE user_id = $1",
                        "DELETE FROM users WHERE id = $1",
                    ] {
                        sqlx::query(statement).bind(user).execute(&mut *tx).await?;
                    }
                }
                // Code rooms that were to go when empty and now are. (An empty channel
                // stays until someone leaves it: removing it must be announced.)
                sqlx::query(
                    "DELETE FROM rooms WHERE kind = 'code' AND delete_when_empty \
                     AND NOT EXISTS (SELECT 1 FROM members m WHERE m.room_id = rooms.id)",
                )
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok((unverified.len() + guests.len()) as u64)
            }

            async fn history_before(
                &self,
                room: natter_protocol::RoomId,
                before: natter_protocol::Seq,
                limit: u32,
                viewer: &natter_protocol::UserId,
            ) -> $crate::store::StoreResult<Vec<natter_protocol::ChatMessage>> {
                self.current_messages(room, "m.seq < $2", before, "m.seq", limit, Some(viewer))
                    .await
            }

            async fn latest_after(
                &self,
                room: natter_protocol::RoomId,
                after: natter_protocol::Seq,
                limit: u32,
                viewer: &natter_protocol::UserId,
            ) -> $crate::store::StoreResult<Vec<natter_protocol::ChatMessage>> {
                self.current_messages(room, "m.seq > $2", after, "m.seq", limit, Some(viewer))
                    .await
            }

            $($own)*
        }
    };
}

pub(crate) use sql_store;
