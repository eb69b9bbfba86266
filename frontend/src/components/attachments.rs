//! A message's files: pictures as thumbnails whose box is reserved from their width and
//! height before they load (the list never jumps), opening full size in a lightbox
//! (Escape closes it, the arrow keys move between the message's pictures); any other
//! file as a card with its name, size and a download link.

use leptos::html;
use leptos::prelude::*;
use natter_protocol::Attachment;

use crate::upload::size_label;

/// Where a file is served.
fn file_url(file: &Attachment) -> String {
    format!("/api/files/{}", file.id.0)
}

/// The largest box a thumbnail takes in the list, in CSS pixels.
const THUMB_BOX: u32 = 320;

/// The files of one message.
#[component]
pub fn AttachmentList(files: Vec<Attachment>) -> impl IntoView {
    let pictures: Vec<Attachment> = files.iter().filter(|f| f.is_picture()).cloned().collect();
    let others: Vec<Attachment> = files.into_iter().filter(|f| !f.is_picture()).collect();
    let open = RwSignal::new(None::<usize>);
    let thumbs = pictures
        .iter()
        .enumerate()
        .map(|(at, picture)| {
            let (width, height) = shown_size(picture);
            view! {
                <button type="button" class="picture" aria-label=format!("Open picture {}", picture.name)
                    on:click=move |_| open.set(Some(at))>
                    <img src=format!("{}/thumb", file_url(picture)) alt=picture.name.clone()
                        width=width height=height loading="lazy" decoding="async"/>
                </button>
            }
        })
        .collect_view();
    let cards = others
        .into_iter()
        .map(|file| {
            view! {
                <a class="file-card" href=file_url(&file) download=file.name.clone()>
                    <svg class="icon file-icon" viewBox="0 0 24 24" width="22" height="22" aria-hidden="true">
                        <path d="M14 3H7a2 2 0 0 0-2 2v14a2 2 0 0 0 2 2h10a2 2 0 0 0 2-2V8zM14 3v5h5"
                            fill="none" stroke="currentColor" stroke-width="1.8" stroke-linejoin="round"/>
                    </svg>
                    <span class="file-name">{file.name.clone()}</span>
                    <span class="file-size">{size_label(file.size)}</span>
                </a>
            }
        })
        .collect_view();
    let has_pictures = !pictures.is_empty();
    view! {
        <div class="attachments">
            {thumbs}
            {cards}
        </div>
        {has_pictures.then(|| view! { <Lightbox pictures open/> })}
    }
}

/// A picture's box in the list: its own size, scaled down to fit [`THUMB_BOX`].
fn shown_size(picture: &Attachment) -> (u32, u32) {
    let (w, h) = (
        picture.width.unwrap_or(THUMB_BOX).max(1),
        picture.height.unwrap_or(THUMB_BOX).max(1),
    );
    let scale = (f64::from(THUMB_BOX) / f64::from(w.max(h))).min(1.0);
    (
        ((f64::from(w) * scale).round() as u32).max(1),
        ((f64::from(h) * scale).round() as u32).max(1),
    )
}

/// The full-size pictures of a message, one at a time, in a modal dialog.
#[component]
fn Lightbox(pictures: Vec<Attachment>, open: RwSignal<Option<usize>>) -> impl IntoView {
    let dialog: NodeRef<html::Dialog> = NodeRef::new();
    let count = pictures.len();
    let pictures = StoredValue::new(pictures);
    Effect::new(move |_| {
        let Some(dialog) = dialog.get() else { return };
        match (open.get().is_some(), dialog.open()) {
            (true, false) => {
                let _ = dialog.show_modal();
            }
            (false, true) => dialog.close(),
            _ => {}
        }
    });
    let step = move |by: isize| {
        open.update(|at| {
            if let Some(at) = at {
                *at = (*at as isize + by).rem_euclid(count as isize) as usize;
            }
        })
    };
    let shown = move || {
        open.get()
            .and_then(|at| pictures.with_value(|p| p.get(at).cloned()))
    };
    view! {
        <dialog class="lightbox" node_ref=dialog aria-label="Picture"
            on:close=move |_| open.set(None)
            on:keydown=move |ev| match ev.key().as_str() {
                "ArrowRight" => step(1),
                "ArrowLeft" => step(-1),
                _ => {}
            }>
            {move || shown().map(|picture| view! {
                <figure>
                    <img src=file_url(&picture) alt=picture.name.clone()
                        width=picture.width.unwrap_or(1) height=picture.height.unwrap_or(1)/>
                    <figcaption>
                        <span>{picture.name.clone()}</span>
                        {(count > 1).then(|| view! {
                            <span class="counter">{move || format!("{} of {count}", open.get().unwrap_or(0) + 1)}</span>
                        })}
                        <a href=file_url(&picture) download=picture.name.clone()>"Download"</a>
                    </figcaption>
                </figure>
            })}
            <div class="lightbox-controls">
                {(count > 1).then(|| view! {
                    <button type="button" aria-label="Previous picture" on:click=move |_| step(-1)>"‹"</button>
                    <button type="button" aria-label="Next picture" on:click=move |_| step(1)>"›"</button>
                })}
                <button type="button" class="close" aria-label="Close" on:click=move |_| open.set(None)>"✕"</button>
            </div>
        </dialog>
    }
}

#[cfg(test)]
mod tests {
    use natter_protocol::FileId;

    use super::*;

    fn picture(width: u32, height: u32) -> Attachment {
        Attachment {
            id: FileId("k4xq2m7d9s0a1b2c3d4e5f6g7h".into()),
            name: "p.jpg".into(),
            mime: "image/jpeg".into(),
            size: 1,
            width: Some(width),
            height: Some(height),
        }
    }

    #[test]
    fn a_pictures_box_keeps_its_shape_within_the_thumbnail_size() {
        assert_eq!(shown_size(&picture(1600, 1200)), (320, 240));
        assert_eq!(shown_size(&picture(900, 1200)), (240, 320));
        assert_eq!(shown_size(&picture(40, 30)), (40, 30));
        assert_eq!(shown_size(&picture(10_000, 1)), (320, 1));
    }
}
