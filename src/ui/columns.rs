//! Column widths that always fit the pane: worked out each frame from
//! the room there is and what each column needs, so a table follows the
//! pane when it narrows (the list beside it is wider in English, the
//! window is resized) instead of keeping widths that no longer fit.

/// What one column needs and what it can shrink to.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Need {
    /// Shows its header and its longest entry whole.
    pub full: f32,
    /// The least it may get (entries beyond are cut, with a tooltip).
    pub least: f32,
}

impl Need {
    /// A column that never shrinks (short words, times).
    pub fn fixed(full: f32) -> Self {
        Need { full, least: full }
    }
}

/// Widths for columns `needs` in `avail` px with `gap` px between them.
/// Room to spare goes to column `spare`. When room is short, columns give
/// way in the order of `shrink` (each down to its least) until the table
/// fits; if even that is not enough, every column is at its least.
pub fn fit(avail: f32, gap: f32, needs: &[Need], spare: usize, shrink: &[usize]) -> Vec<f32> {
    let mut w: Vec<f32> = needs.iter().map(|n| n.full).collect();
    let room = avail - gap * needs.len().saturating_sub(1) as f32;
    let mut over = w.iter().sum::<f32>() - room;
    if over <= 0.0 {
        if let Some(x) = w.get_mut(spare) {
            *x -= over;
        }
        return w;
    }
    for &i in shrink {
        let Some(n) = needs.get(i) else { continue };
        let give = (n.full - n.least).max(0.0).min(over);
        w[i] -= give;
        over -= give;
        if over <= 0.0 {
            break;
        }
    }
    w
}

#[cfg(test)]
mod tests {
    use super::*;

    fn needs() -> Vec<Need> {
        vec![
            Need::fixed(30.0),
            Need {
                full: 150.0,
                least: 60.0,
            },
            Need {
                full: 200.0,
                least: 80.0,
            },
            Need {
                full: 120.0,
                least: 40.0,
            },
            Need::fixed(55.0),
            Need::fixed(55.0),
        ]
    }

    fn total(w: &[f32], gap: f32) -> f32 {
        w.iter().sum::<f32>() + gap * (w.len() - 1) as f32
    }

    #[test]
    fn spare_room_goes_to_the_other_side() {
        let w = fit(700.0, 8.0, &needs(), 2, &[1, 3, 2]);
        assert_eq!(w, vec![30.0, 150.0, 250.0, 120.0, 55.0, 55.0]);
        assert!((total(&w, 8.0) - 700.0).abs() < 1e-3);
    }

    #[test]
    fn a_narrow_pane_shrinks_local_then_state_then_remote_never_the_times() {
        let gap = 8.0;
        for avail in [600.0, 520.0, 460.0, 400.0, 360.0] {
            let w = fit(avail, gap, &needs(), 2, &[1, 3, 2]);
            assert!(total(&w, gap) <= avail + 1e-3, "{avail}: {w:?}");
            assert_eq!((w[0], w[4], w[5]), (30.0, 55.0, 55.0), "{avail}");
        }
        // 650 needed with the gaps: 50 short, taken from the local side only.
        let w = fit(600.0, gap, &needs(), 2, &[1, 3, 2]);
        assert_eq!(w, vec![30.0, 100.0, 200.0, 120.0, 55.0, 55.0]);
        // Local and state at their least before the other side gives.
        let w = fit(400.0, gap, &needs(), 2, &[1, 3, 2]);
        assert_eq!(w, vec![30.0, 60.0, 120.0, 40.0, 55.0, 55.0]);
    }

    #[test]
    fn too_narrow_for_anything_leaves_every_column_at_its_least() {
        let w = fit(100.0, 8.0, &needs(), 2, &[1, 3, 2]);
        assert_eq!(w, vec![30.0, 60.0, 80.0, 40.0, 55.0, 55.0]);
    }
}
