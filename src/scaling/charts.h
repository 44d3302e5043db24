// The scaling-law charts: isoFLOP profiles, the compute-optimal allocation, and the
// learning-rate tuning, drawn with chart/svg_chart.h.
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "chart/svg_chart.h"
#include "scaling/isoflop_fit.h"
#include "scaling/tuning.h"

namespace fw {

// The isoFLOP chart (loss against parameters per budget, with each fitted parabola)
// and the allocation chart (N_opt against C, minima and power law), for one or more
// labelled fits (e.g. dense and MoD).
Chart isoflop_chart(const std::vector<std::pair<std::string, IsoflopFit>>& fits);
Chart n_opt_chart(const std::vector<std::pair<std::string, IsoflopFit>>& fits);
// The tuning stage: loss against learning rate, one curve per variant and size.
Chart tuning_chart(const std::vector<VariantTuning>& tunings);

}  // namespace fw
