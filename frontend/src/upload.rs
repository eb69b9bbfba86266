//! Files on their way up: each picked, pasted or dropped file is sent to
//! `POST /api/uploads` by its own `XMLHttpRequest` (the one browser API that reports
//! upload progress), shown with a progress bar and a cancel button, and, once the
//! server answers, waits in the composer as an [`Attachment`] for the message.
//!
//! A guest proves who it is with `Authorization: Guest <id>:<secret>` (its stored
//! credentials); a signed-in account by its session cookie, which the browser sends.

use std::collections::HashMap;

use leptos::prelude::*;
use natter_protocol::account::ApiError;
use natter_protocol::{Attachment, MAX_ATTACHMENTS};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::JsCast;
use web_sys::{File, ProgressEvent, XmlHttpRequest};

use crate::cache;

/// Where one file is.
#[derive(Debug, Clone, PartialEq)]
pub enum UploadState {
    /// Going up: the fraction sent so far (0 to 1).
    Sending(f64),
    /// Stored by the server: ready to go with the message.
    Done(Attachment),
    /// Refused or broken, with the reason to show.
    Failed(String),
}

/// One file in the composer.
#[derive(Debug, Clone, PartialEq)]
pub struct UploadItem {
    /// Identifies it in this composer.
    pub key: u64,
    /// Its name as picked.
    pub name: String,
    /// Its size in bytes.
    pub size: u64,
    /// Where it is.
    pub state: UploadState,
}

/// A composer's files: the list on screen and the requests in flight. Cheap to copy.
#[derive(Clone, Copy)]
pub struct Uploads {
    items: RwSignal<Vec<UploadItem>>,
    /// A message shown when files could not even start (too many).
    pub notice: RwSignal<Option<String>>,
    requests: StoredValue<HashMap<u64, XmlHttpRequest>, LocalStorage>,
    next_key: StoredValue<u64>,
}

impl Default for Uploads {
    fn default() -> Self {
        Self::new()
    }
}

impl Uploads {
    /// No files yet. Uploads still going when the room or popup that owns them goes
    /// away are cancelled.
    pub fn new() -> Self {
        let uploads = Uploads {
            items: RwSignal::new(Vec::new()),
            notice: RwSignal::new(None),
            requests: StoredValue::new_local(HashMap::new()),
            next_key: StoredValue::new(1),
        };
        let requests = uploads.requests;
        on_cleanup(move || {
            if let Some(going) = requests.try_update_value(std::mem::take) {
                for request in going.into_values() {
                    let _ = request.abort();
                }
            }
        });
        uploads
    }

    /// The files, for the composer to show (reactive).
    pub fn items(&self) -> Vec<UploadItem> {
        self.items.get()
    }

    /// Whether there are no files (reactive).
    pub fn is_empty(&self) -> bool {
        self.items.with(Vec::is_empty)
    }

    /// Where the file `key` is (reactive; `None` once removed).
    pub fn state(&self, key: u64) -> Option<UploadState> {
        self.items
            .with(|items| items.iter().find(|i| i.key == key).map(|i| i.state.clone()))
    }

    /// Whether a file was refused and still waits in the composer (reactive).
    pub fn has_failed(&self) -> bool {
        self.items.with(|items| {
            items
                .iter()
                .any(|i| matches!(i.state, UploadState::Failed(_)))
        })
    }

    /// Whether any file is still going up (reactive).
    pub fn busy(&self) -> bool {
        self.items.with(|items| {
            items
                .iter()
                .any(|i| matches!(i.state, UploadState::Sending(_)))
        })
    }

    /// The files ready to send, in the order added (reactive).
    pub fn attachments(&self) -> Vec<Attachment> {
        self.items.with(|items| {
            items
                .iter()
                .filter_map(|i| match &i.state {
                    UploadState::Done(a) => Some(a.clone()),
                    _ => None,
                })
                .collect()
        })
    }

    /// Starts uploading `files`, up to [`MAX_ATTACHMENTS`] in the composer at once.
    pub fn add(&self, files: Vec<File>) {
        let room = MAX_ATTACHMENTS.saturating_sub(self.items.with(Vec::len));
        self.notice.set(
            (files.len() > room)
                .then(|| format!("A message carries at most {MAX_ATTACHMENTS} files.")),
        );
        for file in files.into_iter().take(room) {
            self.start(file);
        }
    }

    /// Cancels a file going up, or removes one from the composer.
    pub fn remove(&self, key: u64) {
        if let Some(request) = self.requests.try_update_value(|r| r.remove(&key)).flatten() {
            let _ = request.abort();
        }
        self.items.update(|items| items.retain(|i| i.key != key));
        self.notice.set(None);
    }

    /// Empties the composer's files (the message went).
    pub fn clear(&self) {
        self.items.set(Vec::new());
        self.notice.set(None);
    }

    /// Moves file `key` on (nothing, once the composer is gone: a request can end after
    /// its room or popup closed).
    fn set_state(&self, key: u64, state: UploadState) {
        self.items.try_update(|items| {
            if let Some(item) = items.iter_mut().find(|i| i.key == key) {
                item.state = state;
            }
        });
    }

    fn start(&self, file: File) {
        let key = self.next_key.get_value();
        self.next_key.set_value(key + 1);
        let name = file.name();
        self.items.update(|items| {
            items.push(UploadItem {
                key,
                name: name.clone(),
                size: file.size() as u64,
                state: UploadState::Sending(0.0),
            })
        });
        match self.send(key, &name, &file) {
            Ok(request) => self.requests.update_value(|r| {
                r.insert(key, request);
            }),
            Err(why) => self.set_state(key, UploadState::Failed(why)),
        }
    }

    /// Opens the request for one file and wires its progress and its end.
    fn send(&self, key: u64, name: &str, file: &File) -> Result<XmlHttpRequest, String> {
        let failed = |_| "The browser could not start the upload.".to_string();
        let request = XmlHttpRequest::new().map_err(failed)?;
        let url = format!(
            "/api/uploads?name={}",
            String::from(js_sys::encode_uri_component(name))
        );
        request.open("POST", &url).map_err(failed)?;
        if let Some(credentials) = cache::load_credentials() {
            let _ = request.set_request_header(
                "Authorization",
                &format!("Guest {}:{}", credentials.user_id.0, credentials.secret),
            );
        }
        let uploads = *self;
        let progress = Closure::<dyn FnMut(ProgressEvent)>::new(move |ev: ProgressEvent| {
            if ev.length_computable() && ev.total() > 0.0 {
                uploads.set_state(key, UploadState::Sending(ev.loaded() / ev.total()));
            }
        });
        if let Ok(upload) = request.upload() {
            upload.set_onprogress(Some(progress.as_ref().unchecked_ref()));
        }
        progress.forget();
        let finished = request.clone();
        let done = Closure::<dyn FnMut()>::new(move || {
            uploads.requests.try_update_value(|r| r.remove(&key));
            let body = finished.response_text().ok().flatten().unwrap_or_default();
            let state = match finished.status().unwrap_or(0) {
                201 => serde_json::from_str::<Attachment>(&body)
                    .map(UploadState::Done)
                    .unwrap_or_else(|_| {
                        UploadState::Failed("The server's answer was unreadable.".into())
                    }),
                0 => UploadState::Failed("The connection broke; try again.".into()),
                _ => UploadState::Failed(
                    serde_json::from_str::<ApiError>(&body)
                        .map(|e| e.message)
                        .unwrap_or_else(|_| "The server refused the file.".into()),
                ),
            };
            uploads.set_state(key, state);
        });
        request.set_onloadend(Some(done.as_ref().unchecked_ref()));
        done.forget();
        request.send_with_opt_blob(Some(file)).map_err(failed)?;
        Ok(request)
    }
}

/// Files of a `FileList` (from a picker, a paste or a drop).
pub fn files_of(list: Option<web_sys::FileList>) -> Vec<File> {
    let Some(list) = list else { return Vec::new() };
    (0..list.length()).filter_map(|i| list.get(i)).collect()
}

/// "1.4 MB", "820 KB", "12 bytes".
pub fn size_label(bytes: u64) -> String {
    match bytes {
        0..=999 => format!("{bytes} bytes"),
        1_000..=999_999 => format!("{} KB", bytes / 1_000),
        _ => format!("{:.1} MB", bytes as f64 / 1e6),
    }
}

#[cfg(test)]
mod tests {
    use super::size_label;

    #[test]
    fn sizes_read_like_a_person_would_say_them() {
        assert_eq!(size_label(12), "12 bytes");
        assert_eq!(size_label(820_400), "820 KB");
        assert_eq!(size_label(1_430_000), "1.4 MB");
    }
}
