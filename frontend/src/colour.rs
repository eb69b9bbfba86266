//! A readable colour per person: each user id gets a hue, and that hue is darkened (on
//! the light theme) or lightened (on the dark one) until the name passes WCAG AA
//! contrast (4.5:1) against every background a name is drawn on. A fixed lightness
//! cannot do it: at the same HSL lightness yellow is far brighter than blue, so olive
//! names were 3:1 while blue ones were fine.
//!
//! Pure and tested natively; the components put the result in a `style` attribute as
//! two custom properties that `style.css` picks from by `prefers-color-scheme`.

use natter_protocol::UserId;

/// The contrast every name colour reaches (WCAG AA for normal text is 4.5; a little
/// margin for rounding and anti-aliasing).
pub const MIN_CONTRAST: f64 = 4.6;

/// The darkest background a name sits on in the light theme (a hovered message on the
/// page background), as `#rrggbb` in `style.css`.
pub const LIGHT_BACKGROUND: [u8; 3] = [0xe9, 0xe9, 0xe5];
/// The lightest background a name sits on in the dark theme (a hovered row on a panel).
pub const DARK_BACKGROUND: [u8; 3] = [0x33, 0x35, 0x3c];

/// A hue (0–359) derived from a user's id, so each person keeps one colour everywhere,
/// through renames.
pub fn user_hue(user: &UserId) -> u32 {
    // FNV-1a: tiny, stable across builds and platforms.
    let mut hash: u32 = 0x811c_9dc5;
    for byte in user.0.bytes() {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash % 360
}

/// The `style` attribute that colours `user`'s name and avatar: `--name` (light theme,
/// also the avatar's background under white initials) and `--name-dark`.
pub fn name_style(user: &UserId) -> String {
    let hue = f64::from(user_hue(user));
    let light = readable(hue, 0.62, 0.50, -0.01, LIGHT_BACKGROUND);
    let dark = readable(hue, 0.75, 0.58, 0.01, DARK_BACKGROUND);
    format!("--name: {}; --name-dark: {}", hex(light), hex(dark))
}

/// The first colour of `hue` and `saturation`, starting at `lightness` and moving by
/// `step`, that reaches [`MIN_CONTRAST`] against `background`.
fn readable(hue: f64, saturation: f64, lightness: f64, step: f64, background: [u8; 3]) -> [u8; 3] {
    let behind = luminance(background);
    let mut lightness = lightness;
    loop {
        let colour = hsl(hue, saturation, lightness);
        if contrast(luminance(colour), behind) >= MIN_CONTRAST || !(0.0..=1.0).contains(&lightness)
        {
            return colour;
        }
        lightness += step;
    }
}

/// HSL (hue in degrees, the rest 0–1) to sRGB bytes.
fn hsl(hue: f64, saturation: f64, lightness: f64) -> [u8; 3] {
    let lightness = lightness.clamp(0.0, 1.0);
    let chroma = (1.0 - (2.0 * lightness - 1.0).abs()) * saturation;
    let sector = hue / 60.0;
    let x = chroma * (1.0 - (sector % 2.0 - 1.0).abs());
    let (r, g, b) = match sector as u32 {
        0 => (chroma, x, 0.0),
        1 => (x, chroma, 0.0),
        2 => (0.0, chroma, x),
        3 => (0.0, x, chroma),
        4 => (x, 0.0, chroma),
        _ => (chroma, 0.0, x),
    };
    let m = lightness - chroma / 2.0;
    let byte = |v: f64| ((v + m) * 255.0).round().clamp(0.0, 255.0) as u8;
    [byte(r), byte(g), byte(b)]
}

/// WCAG relative luminance of an sRGB colour.
pub fn luminance([r, g, b]: [u8; 3]) -> f64 {
    let linear = |c: u8| {
        let c = f64::from(c) / 255.0;
        if c <= 0.039_28 {
            c / 12.92
        } else {
            ((c + 0.055) / 1.055).powf(2.4)
        }
    };
    0.2126 * linear(r) + 0.7152 * linear(g) + 0.0722 * linear(b)
}

/// WCAG contrast ratio of two luminances.
pub fn contrast(a: f64, b: f64) -> f64 {
    let (hi, lo) = if a > b { (a, b) } else { (b, a) };
    (hi + 0.05) / (lo + 0.05)
}

fn hex([r, g, b]: [u8; 3]) -> String {
    format!("#{r:02x}{g:02x}{b:02x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(hex: &str) -> [u8; 3] {
        let byte = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex");
        [byte(1), byte(3), byte(5)]
    }

    /// The two colours of a style attribute.
    fn colours(style: &str) -> ([u8; 3], [u8; 3]) {
        let mut found = style
            .split("; ")
            .map(|p| parse(p.split(": ").nth(1).expect("value")));
        (found.next().expect("light"), found.next().expect("dark"))
    }

    #[test]
    fn the_hue_is_stable_per_id_and_in_range() {
        let id = UserId("9f2c41d07a6be813".into());
        assert_eq!(user_hue(&id), user_hue(&id));
        assert!((0..2000).all(|i| user_hue(&UserId(format!("u{i}"))) < 360));
        assert_ne!(user_hue(&id), user_hue(&UserId("9f2c41d07a6be814".into())));
    }

    #[test]
    fn every_hue_is_readable_on_both_themes_and_under_white_initials() {
        for i in 0..5000 {
            let (light, dark) = colours(&name_style(&UserId(format!("user-{i}"))));
            let on_light = contrast(luminance(light), luminance(LIGHT_BACKGROUND));
            let on_dark = contrast(luminance(dark), luminance(DARK_BACKGROUND));
            let white_initials = contrast(luminance(light), 1.0);
            assert!(on_light >= 4.5, "user-{i}: {on_light:.2} on light");
            assert!(on_dark >= 4.5, "user-{i}: {on_dark:.2} on dark");
            assert!(
                white_initials >= 4.5,
                "user-{i}: {white_initials:.2} under white"
            );
        }
    }

    #[test]
    fn names_keep_their_colour_rather_than_all_turning_grey() {
        // Darkening stops as soon as the name is readable: a blue stays clearly blue.
        let [r, g, b] = readable(220.0, 0.62, 0.50, -0.01, LIGHT_BACKGROUND);
        assert!(b > r + 60 && b > g + 30, "{r} {g} {b}");
    }

    #[test]
    fn contrast_matches_known_pairs() {
        assert!((contrast(luminance([0, 0, 0]), luminance([255, 255, 255])) - 21.0).abs() < 0.01);
        // The olive the issue found unreadable: about 3:1 on the page background.
        let olive = contrast(luminance([0x8f, 0x93, 0x1f]), luminance([0xf6, 0xf6, 0xf3]));
        assert!((2.8..3.2).contains(&olive), "{olive}");
    }
}
