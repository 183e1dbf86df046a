// Line art from photos, for edges -> photo training pairs (pix2pix's
// edges2shoes / edges2handbags idea, with edges drawn by our own filters
// rather than a downloaded model). Both methods return one channel, black
// (0) lines on white (255), the size of the input. See docs/prepare.md.
#pragma once

#include <vector>

#include <pixgrad/data/image.h>

namespace pixgrad::data {

// A single-channel image of doubles, row-major; the filters' working format.
struct GreyImage {
  int width = 0;
  int height = 0;
  std::vector<double> values;  // height * width

  double at(int x, int y) const { return values[static_cast<size_t>(y) * width + x]; }
};

// Luma in [0, 1] (ITU-R BT.601 weights, as PIL's "L" mode); grey is taken as
// is; alpha is ignored.
GreyImage to_grey(const Image& image);

// The normalised 1-D Gaussian of standard deviation `sigma` (> 0), radius
// ceil(3 sigma): kernel[r + i] weighs offset i, for i in [-r, r].
std::vector<double> gaussian_kernel(double sigma);

// Separable Gaussian blur (a row pass, then a column pass, with the kernel of
// gaussian_kernel); pixels outside the image repeat the nearest edge pixel.
GreyImage gaussian_blur(const GreyImage& image, double sigma);

// eXtended Difference of Gaussians, Winnemöller, Kyprianidis and Olsen,
// "XDoG: An eXtended difference-of-Gaussians compendium including advanced
// image stylization", Computers & Graphics 36(6), 2012, eq. (3)-(5):
//   D = G_sigma - tau * G_{k sigma}   (on grey in [0, 1])
//   T = 1 where D >= epsilon, else 1 + tanh(phi * (D - epsilon)).
// With tau just under 1 a flat area has D = (1 - tau) * grey >= 0, so a
// slightly negative epsilon keeps every flat area white, whatever its
// brightness, and only the dark side of a contrast edge turns black.
// The defaults were chosen on 256 x 256 facade photos (docs/prepare.md).
struct XdogOptions {
  double sigma = 0.9;       // scale of the finest lines, in pixels
  double k = 1.6;           // ratio of the two Gaussians (the paper's, near a Laplacian of Gaussian)
  double tau = 0.98;        // weight of the wider Gaussian
  double epsilon = -0.005;  // how much darker than its surroundings a line must be (-0.02 lost most windows)
  double phi = 100.0;       // steepness of the soft threshold: larger is crisper (200 looked noisy)
};
Image xdog_edges(const Image& image, const XdogOptions& options = {});

// Canny, "A Computational Approach to Edge Detection", IEEE PAMI 8(6), 1986:
// Gaussian blur, Sobel gradients, non-maximum suppression across the edge,
// then a double threshold with hysteresis (a weak pixel stays if it is
// 8-connected to a strong one). Thresholds are on the gradient magnitude in
// grey levels per pixel (grey in [0, 1]; the Sobel sums divided by 8), so a
// sharp step from black to white measures 0.5.
// The defaults suit 256-pixel facade photos, whose stone-on-stone edges are
// faint (0.04 / 0.1 kept only the sky line; 0.01 / 0.03 traced texture).
struct CannyOptions {
  double sigma = 1.4;
  double low = 0.015;
  double high = 0.04;
};
Image canny_edges(const Image& image, const CannyOptions& options = {});

}  // namespace pixgrad::data
