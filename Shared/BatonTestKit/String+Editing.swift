import Foundation

extension String {
    /// The text with the first occurrence of `target` replaced, for tests that break a valid file in one place.
    public func replacingFirst(_ target: String, with replacement: String) -> String {
        guard let range = self.range(of: target) else {
            return self
        }
        return self.replacingCharacters(in: range, with: replacement)
    }
}
